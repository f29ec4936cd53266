# C integer suffixes (U, L, LL, UL, ULL in any case) and C bases (0x, 0b, leading-0 octal).
	r1 = 5LL
	r1 = 5ULL
	r1 = 5U
	r1 = 5L
	r1 = 5ll
	r1 = 5uLL
	r1 = 5ul
	r1 = 5Ul
	r1 = 5uLl
	r1 = 5lL
	r1 = 0x10ULL
	r1 = 0X1f
	r1 = 0b101
	r1 = 0B11
	r1 = 017
	r1 = 017ULL
	r1 = -5LL ll
	r1 = 0x5ULL ll
	r1 = 0xffffffffffffffffULL ll
	r2 += 7u
	w3 = -1l
	*(u32 *)(r10 - 8) = 42ULL
	r0 = *(u32 *)(r1 + 5LL)
	if r1 == 5u goto +1
	if w1 s< -2LL goto -1
	goto +0x10
	call 14ULL
	exit
