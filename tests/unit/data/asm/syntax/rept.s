# .rept N ... .endr repeats the lines between them, nested or zero times.
	r0 = 0
	.rept 3
	r0 += 1
	.endr
	.rept 0
	r0 += 100
	.endr
	.rept 2
	r1 = 1
	.rept 3
	r1 <<= 1
	.endr
	.endr
	.rept 2
1:	if r0 > 5 goto 1f
	r0 += 1
	goto 1b
1:
	.endr
	exit
