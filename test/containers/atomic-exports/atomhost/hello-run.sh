#!/bin/sh
# hello-world's run.sh with busybox httpd in place of ncat (see README.md).
mkdir -p /dev/shm/www
sh /usr/bin/greet.sh > /dev/shm/www/index.html
exec httpd -f -p "127.0.0.1:${PORT:-8081}" -h /dev/shm/www
