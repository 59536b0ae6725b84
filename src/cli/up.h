/* up.h - `meridian up`: a local deployment on 127.0.0.1 for trying Meridian. */
#ifndef MERIDIAN_UP_H
#define MERIDIAN_UP_H

/* argv[0] is "up". Returns the process exit code. */
int up_main(int argc, char **argv);

#endif
