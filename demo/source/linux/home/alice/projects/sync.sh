#!/bin/sh
# nightly job
rsync -a /srv/www/ /backup/www/
