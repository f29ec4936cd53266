# Immediates wider than their 32-bit field: llvm-mc keeps the low 32 bits.
	r1 = 0x1234567890
	w1 = 0x1234567890
	r1 += 0x1234567890
	w2 -= 0xffffffff00000001
	r1 = -0x80000001
	r1 = 0xffffffffffffffff
	r1 = 18446744073709551615
	r1 = -18446744073709551615
	r1 = -9223372036854775808
	r1 = 0xffffffff00000000
	*(u64 *)(r10 - 8) = 0x1234567890
	*(u8 *)(r10 - 1) = 0x1ffffffff
	if r1 == 0x1234567890 goto +1
	if w1 > -0x100000001 goto +1
	call 0x100000005
	r0 = *(u8 *)skb[0x100000004]
	exit
