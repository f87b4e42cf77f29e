# shellcheck shell=dash disable=SC2154 # $boot comes from stage2
# Stage-2 workload of the systemd-resume scenario (installed as
# /nix/rr-test/workload, sourced by vm-tests/lib/stage2): with rr.hibernate=1
# on the command line, hibernate to the disk-main-swap partition. The lines
# after the write run only once a later boot has resumed this image.
case " $(cat /proc/cmdline) " in
*" rr.hibernate=1 "*)
	swapon /dev/disk/by-partlabel/disk-main-swap && say "swapon=ok"
	echo shutdown >/sys/power/disk # power off when the image is written
	echo 0 >/sys/power/image_size  # as small an image as the kernel can make
	sync
	say "hibernating"
	if echo disk >/sys/power/state; then
		say "resumed=boot-$boot"
		# Written by the resumed system, into the root it was running on.
		echo "$boot" >/etc/resumed
	else
		say "hibernate=failed"
	fi
	swapoff /dev/disk/by-partlabel/disk-main-swap
	;;
esac
