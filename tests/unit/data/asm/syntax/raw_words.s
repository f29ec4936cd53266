# .8byte and .quad: raw instruction words (little-endian 64-bit values), one or a list.
	r0 = 1
	.8byte 0x00000001000000b7
	.quad 0x0000000200000107, 0x95
	.8byte -4294967113		# r0 = -1: the sign fills the immediate
	.quad 0x0000000000000118
	.quad 0x0000000500000000
	.8byte 0x0000000000000095
