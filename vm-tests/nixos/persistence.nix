# Persistence over reboots, the same claim as vm-tests/scenarios/persistence.sh:
# three boots each write /etc/boot-N (root: wiped) and /persist/data-N,
# /var/lib/data/boot-N (persisted). After each reboot the earlier /etc files
# are gone, every persisted file is present, and the archives count up with
# valid, distinct stamps.
# Used by the flake: import ./vm-tests/nixos/persistence.nix { inherit pkgs self; systemdInitrd = true; }
{
  pkgs,
  self,
  systemdInitrd ? true,
}:
pkgs.testers.runNixOSTest {
  name = "root-rotate-persistence-${if systemdInitrd then "systemd" else "scripted"}-initrd";

  nodes.machine = import ./common.nix { inherit self systemdInitrd; };

  testScript = ''
    import re

    STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z(-\d{4})?$")


    def archives():
        """Archive names: subvolumes directly in @old_roots."""
        out = machine.succeed("btrfs subvolume list / | awk '{print $NF}'")
        return sorted(
            p.split("/", 1)[1]
            for p in out.split()
            if p.startswith("@old_roots/") and p.count("/") == 1
        )


    def boot():
        machine.wait_for_unit("multi-user.target")
        machine.succeed("journalctl -b -o cat --grep 'root-rotate: rotate:'")


    machine.start(allow_reboot=True)
    boot()

    with subtest("first boot: blank @root created on the fresh disk"):
        machine.succeed("findmnt -no OPTIONS / | grep -q 'subvol=/@root'")
        machine.succeed("findmnt -no OPTIONS /persist | grep -q 'subvol=/@persist'")
        machine.succeed("journalctl -b -o cat --grep 'root-rotate: rotate: created missing @root'")
        assert archives() == [], archives()
        # The flavour under test: only systemd stage 1 reports an initrd phase.
        analyze = machine.wait_until_succeeds("systemd-analyze")
        assert ("(initrd)" in analyze) == ${if systemdInitrd then "True" else "False"}, analyze

    for n in range(1, 4):
        machine.succeed(
            f"echo {n} > /etc/boot-{n}",
            f"echo {n} > /persist/data-{n}",
            f"echo {n} > /var/lib/data/boot-{n}",
            "sync",
        )
        machine.reboot()
        boot()
        with subtest(f"after reboot {n}: /etc wiped, /persist kept, {n} archive(s)"):
            machine.fail("ls /etc/boot-*")
            for i in range(1, n + 1):
                machine.succeed(f"test -s /persist/data-{i}", f"test -s /var/lib/data/boot-{i}")
            a = archives()
            assert len(a) == n, a
            assert all(STAMP.match(x) for x in a), a
            assert len(set(a)) == n, a
            # The root of the previous boot was archived, not lost.
            machine.succeed(
                "mkdir -p /mnt/top",
                "mount -o subvolid=5 /dev/vda /mnt/top",
                f"test -s /mnt/top/@old_roots/{a[-1]}/etc/boot-{n}",
                "umount /mnt/top",
            )

    machine.shutdown()
  '';
}
