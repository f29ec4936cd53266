# Several labels on one instruction; jumps may use any of them.
	r0 = 0
	if r1 == 0 goto second
	if r1 == 1 goto first
	if r1 == 2 goto third
first:
second: third:	r0 = 1
	exit
