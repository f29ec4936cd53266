# A label after the last instruction: jumps to it assemble (the verifier judges them).
	r0 = 0
	if r1 == 0 goto out
	r0 = 1
	goto out
	.rept 2
	r0 += 1
	.endr
out:
