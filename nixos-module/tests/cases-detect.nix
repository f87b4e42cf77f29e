# Hardware detection (../storage/detect.nix) against nixos-facter reports in
# ./facter/: one per host, plus ambiguous, unmatched and minimal ones. Pure
# lib: detect.nix is a function of the parsed report, no system is built.
{ nixos, ... }:
let
  inherit (nixos) lib;
  detect = import ../storage/detect.nix { inherit lib; };
  report = name: builtins.fromJSON (builtins.readFile (./facter + "/${name}.json"));
  run = name: detect (report name);
  pick = r: { inherit (r) profile candidates disks; };
  # The description must name what was found: each fragment appears in it.
  mentions = r: fragments: lib.all (f: lib.hasInfix f r.detected) fragments;
in
{
  testDetectZephyrus = {
    expr = pick (run "zephyrus");
    expected = {
      profile = "zephyrus";
      candidates = [ "zephyrus" ];
      # Largest first: the 2 TB Crucial P3 is the primary.
      disks = [
        "/dev/disk/by-id/nvme-CT2000P3SSD8_2310E6B1C2D4"
        "/dev/disk/by-id/nvme-Micron_2450_MTFDKBA1T0TFK_22153B8F9A11"
      ];
    };
  };

  testDetectYoga = {
    # The installer USB stick in the report is ignored.
    expr = pick (run "yoga");
    expected = {
      profile = "yoga";
      candidates = [ "yoga" ];
      disks = [ "/dev/disk/by-id/nvme-SAMSUNG_MZVL2512HCJQ-00BL7_S64KNX0T512345" ];
    };
  };

  testDetectHetzner = {
    # 458 GiB, as lsblk prints it.
    expr = pick (run "hetzner");
    expected = {
      profile = "hetzner";
      candidates = [ "hetzner" ];
      disks = [ "/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_120210839" ];
    };
  };

  testDetectContabo = {
    # 536 GB, as sold.
    expr = pick (run "contabo");
    expected = {
      profile = "contabo";
      candidates = [ "contabo" ];
      disks = [ "/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_drive-scsi0" ];
    };
  };

  testDetectOvh = {
    # virtio-blk without a by-id link: the kernel name.
    expr = pick (run "ovh");
    expected = {
      profile = "ovh";
      candidates = [ "ovh" ];
      disks = [ "/dev/vda" ];
    };
  };

  testDetectLaptopThreeNvmeIsAmbiguous = {
    expr =
      let
        r = run "ambiguous-laptop-3nvme";
      in
      {
        inherit (r) profile candidates;
        named = mentions r [
          "form factor laptop"
          "3 disk(s) (3 NVMe)"
          "/dev/disk/by-id/nvme-CT2000P3SSD8_2310E6B1C2D4"
          "2000.4 GB"
          "1024.2 GB"
          "1000.2 GB"
        ];
      };
    expected = {
      profile = null;
      candidates = [ ];
      named = true;
    };
  };

  testDetectVmMatchingTwoServersIsAmbiguous = {
    expr =
      let
        r = run "ambiguous-vm-512gb";
      in
      {
        inherit (r) profile candidates;
        named = mentions r [
          "virtualisation kvm"
          "/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_5120000001"
          "512.0 GB (476.8 GiB)"
        ];
      };
    expected = {
      profile = null;
      candidates = [
        "hetzner"
        "contabo"
      ];
      named = true;
    };
  };

  testDetectVmMatchingNoServer = {
    expr =
      let
        r = run "unmatched-vm-40gb";
      in
      {
        inherit (r) profile candidates;
        named = mentions r [
          "virtualisation kvm"
          "41.0 GB (38.1 GiB)"
        ];
      };
    expected = {
      profile = null;
      candidates = [ ];
      named = true;
    };
  };

  testDetectMinimalReport = {
    expr = run "minimal";
    expected = {
      profile = null;
      candidates = [ ];
      disks = [ ];
      detected = "form factor unknown, virtualisation unknown, no disks";
    };
  };

  testDetectEmptyReport = {
    expr = (detect { }).profile;
    expected = null;
  };

  # Tolerance edges: the hetzner range runs from 458 GB - 5 % to 458 GiB + 5 %.
  testDetectHetznerRangeEdges = {
    expr =
      let
        vm = bytes: {
          virtualisation = "kvm";
          hardware.disk = [
            {
              unix_device_names = [ "/dev/sda" ];
              resources = [
                {
                  type = "size";
                  unit = "sectors";
                  value_1 = bytes / 512;
                  value_2 = 512;
                }
              ];
            }
          ];
        };
        gb = 1000 * 1000 * 1000;
      in
      map (b: (detect (vm b)).candidates) [
        (435 * gb) # below 458 GB - 5 % (435.1 GB)
        (436 * gb)
        (500 * gb)
        (516 * gb)
        (517 * gb) # above 458 GiB + 5 % (516.4 GB)
      ];
    expected = [
      [ ]
      [ "hetzner" ]
      [ "hetzner" ]
      [
        "hetzner"
        "contabo"
      ]
      [ "contabo" ]
    ];
  };

  # A bare-metal or non-KVM machine never gets a server profile, whatever its disk.
  testDetectServerNeedsKvm = {
    expr =
      let
        r = report "hetzner";
      in
      (detect (r // { virtualisation = "none"; })).candidates;
    expected = [ ];
  };

  # value_2 missing: 512-byte sectors.
  testDetectSectorSizeDefault = {
    expr =
      (detect {
        virtualisation = "qemu";
        hardware.disk = [
          {
            unix_device_names = [ "/dev/vda" ];
            resources = [
              {
                type = "size";
                unit = "sectors";
                value_1 = 419430400;
              }
            ];
          }
        ];
      }).profile;
    expected = "ovh";
  };
}
