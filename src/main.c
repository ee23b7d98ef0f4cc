/* dreamd: wiring only (being built). */
#include <stdio.h>

int main(void)
{
    puts("dreamd " DREAM_VERSION);
    return 0;
}
