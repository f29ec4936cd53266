/* Target of the uprobe, uretprobe, USDT and user-stack tests.
 *
 * Waits for a line on stdin (so that the test can attach with this pid first), then calls
 * target_add(i, 1000) N times through outer_fn -> middle_fn -> inner_fn -> target_add, and fires
 * the USDT probe ebpf_test:tick (with a semaphore) N times with three arguments: i in a register,
 * 2*i in memory, and the constant 5. Prints "sema=<value> sum=<sum>" and exits when stdin closes.
 *
 * The .note.stapsdt note is written by hand (what <sys/sdt.h> would emit), so no systemtap
 * headers are needed.
 */
#include <stdio.h>
#include <stdlib.h>

__extension__ unsigned short ebpf_test_tick_semaphore __attribute__((unused)) __attribute__((section(".probes")));

#define USDT_TICK(a1, a2)                                                                   \
    __asm__ __volatile__(                                                                   \
        "990: nop\n"                                                                        \
        ".pushsection .note.stapsdt,\"?\",\"note\"\n"                                       \
        ".balign 4\n"                                                                       \
        ".4byte 992f-991f, 994f-993f, 3\n"                                                  \
        "991: .asciz \"stapsdt\"\n"                                                         \
        "992: .balign 4\n"                                                                  \
        "993: .8byte 990b\n"                                                                \
        ".8byte _.stapsdt.base\n"                                                           \
        ".8byte ebpf_test_tick_semaphore\n"                                                 \
        ".asciz \"ebpf_test\"\n"                                                            \
        ".asciz \"tick\"\n"                                                                 \
        ".asciz \"-4@%[x] 8@%[y] 4@$5\"\n"                                                  \
        "994: .balign 4\n"                                                                  \
        ".popsection\n"                                                                     \
        ".ifndef _.stapsdt.base\n"                                                          \
        ".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat\n"             \
        ".weak _.stapsdt.base\n"                                                            \
        ".hidden _.stapsdt.base\n"                                                          \
        "_.stapsdt.base: .space 1\n"                                                        \
        ".size _.stapsdt.base, 1\n"                                                         \
        ".popsection\n"                                                                     \
        ".endif\n"                                                                          \
        :: [x] "r"(a1), [y] "m"(a2))

__attribute__((noinline)) int target_add(int a, int b)
{
    __asm__ __volatile__("" ::: "memory");
    return a + b;
}

__attribute__((noinline)) int inner_fn(int i) { int r = target_add(i, 1000); __asm__ __volatile__("" ::: "memory"); return r; }
__attribute__((noinline)) int middle_fn(int i) { int r = inner_fn(i); __asm__ __volatile__("" ::: "memory"); return r; }
__attribute__((noinline)) int outer_fn(int i) { int r = middle_fn(i); __asm__ __volatile__("" ::: "memory"); return r; }

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10;
    char line[16];
    long sum = 0;
    if (!fgets(line, sizeof line, stdin))
        return 1;
    for (int i = 0; i < n; i++) {
        sum += outer_fn(i);
        if (ebpf_test_tick_semaphore) {
            volatile long twice = 2L * i;
            USDT_TICK(i, twice);
        }
    }
    printf("sema=%u sum=%ld\n", (unsigned)ebpf_test_tick_semaphore, sum);
    fflush(stdout);
    (void)!fgets(line, sizeof line, stdin); /* stay alive (for symbolization) until stdin closes */
    return 0;
}
