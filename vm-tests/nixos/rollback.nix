# Rollback, the same claim as vm-tests/scenarios/rollback.sh: boot 2 has lost
# a file written in boot 1; a rescue boot runs `root-rotate rollback --latest`
# in stage 1 (kernel parameter rr.rescue=rollback, see common.nix), and that
# boot comes up with the file back (the marker keeps the restored root once);
# the next boot wipes again.
# Used by the flake: import ./vm-tests/nixos/rollback.nix { inherit pkgs self; systemdInitrd = true; }
{
  pkgs,
  self,
  systemdInitrd ? true,
}:
pkgs.testers.runNixOSTest {
  name = "root-rotate-rollback-${if systemdInitrd then "systemd" else "scripted"}-initrd";

  nodes.machine = import ./common.nix { inherit self systemdInitrd; };

  testScript = ''
    import os


    def boot():
        machine.wait_for_unit("multi-user.target")


    def kmsg(pattern):
        machine.succeed(f"journalctl -b -o cat --grep '{pattern}'")


    machine.start(allow_reboot=True)
    boot()
    machine.succeed("echo 1 > /etc/boot-1", "sync")

    with subtest("boot 2: the file written in boot 1 is gone"):
        machine.reboot()
        boot()
        machine.fail("test -e /etc/boot-1")
        machine.succeed("echo 2 > /etc/boot-2", "sync")

    with subtest("rescue boot: rollback --latest in stage 1 restores boot 1's root"):
        machine.shutdown()
        os.environ["QEMU_KERNEL_PARAMS"] = "rr.rescue=rollback"
        machine.start(allow_reboot=True)
        boot()
        kmsg("root-rotate: rollback:")
        kmsg("kept restored @root once")
        machine.succeed("test -s /etc/boot-1")
        machine.fail("test -e /etc/boot-2")
        machine.succeed(
            "mkdir -p /mnt/top",
            "mount -o subvolid=5 /dev/vda /mnt/top",
            # boot 2's root was archived, not lost; the marker was consumed.
            "ls /mnt/top/@old_roots/*/etc/boot-2",
            "test ! -e /mnt/top/@root.keep-once",
            "umount /mnt/top",
        )

    with subtest("next boot: wiped again"):
        machine.shutdown()
        del os.environ["QEMU_KERNEL_PARAMS"]
        machine.start(allow_reboot=True)
        boot()
        machine.fail("test -e /etc/boot-1")
        machine.fail("test -e /etc/boot-2")

    machine.shutdown()
  '';
}
