# Numeric local labels: "N:" may be defined again; "Nb" is the closest definition before,
# "Nf" the next one after (a label on the reference's own line counts as before).
1:
	r0 = 1
	if r0 == 0 goto 1b
	if r0 == 0 goto 1f
	goto 2f
1:	r0 = 2
2:
	if r0 s> 3 goto 1b
1:	goto 1b
10:	r1 = 10
	if r1 != 0 goto 10b
	goto 2f
2:	exit
