# The plan ./disko-format runs for one host of ./disko-hosts.nix: the host
# evaluated as a full NixOS system (./nixos.nix) with each disko disk's
# `device` set to the loop device the harness attached (`devices`, JSON
# { <disk name> = "/dev/loopN"; }), and, read from that evaluation:
#   script, interpreter  disko's format script (system.build.format, the
#                        `disko-format` program) as text
#   packages             the Nix packages that script puts on PATH
#   disks                per disk: device and GPT partitions (index, label,
#                        type code, size) as disko will create them
#   btrfs                every Btrfs filesystem of the layout: device and
#                        the subvolumes disko creates
#   fileSystems          config.fileSystems, in mount-point order
#   swap                 config.swapDevices (device, randomEncryption)
#   nocow                subvolumes expected NOCOW: those mounted where a
#                        tmpfiles `h <path> - - - - +C` line points, plus the
#                        host entry's `nocow`
# Evaluation only.
{
  nixpkgs,
  disko,
  impermanence,
  preservation,
  host,
  devices ? "{}",
}:
let
  nixos = import ./nixos.nix { inherit nixpkgs disko impermanence preservation; };
  inherit (nixos) lib;
  hosts = import ./disko-hosts.nix;
  h =
    hosts.${host}
      or (throw "disko-format: no host ${host} in disko-hosts.nix (hosts: ${toString (lib.attrNames hosts)})");

  evalHost =
    extra:
    (nixos.exampleHost {
      name = h.example or host;
      systemdInitrd = h.systemdInitrd or true;
      persistence = h.persistence or "impermanence";
      extra = (h.modules or [ ]) ++ extra;
    }).config;

  # Disk names as the configuration declares them, before the override.
  declared = lib.attrNames (evalHost [ ]).disko.devices.disk;
  wanted = lib.attrNames h.disks;
  devs = builtins.fromJSON devices;
  config =
    if declared != wanted then
      throw "disko-format: host ${host} declares disko disks [${toString declared}] but disko-hosts.nix sizes [${toString wanted}]"
    else
      evalHost [
        { disko.devices.disk = lib.mapAttrs (_: d: { device = lib.mkForce d; }) devs; }
      ];

  # Every Btrfs content of the layout, wherever it sits (whole disk, GPT
  # partition, LUKS, LVM, mdadm).
  btrfsIn =
    c:
    if c == null then
      [ ]
    else if (c.type or null) == "btrfs" then
      [
        {
          inherit (c) device;
          subvolumes = lib.sort lib.lessThan (map (s: s.name) (lib.attrValues c.subvolumes));
        }
      ]
    else if (c.type or null) == "gpt" then
      lib.concatMap (p: btrfsIn (p.content or null)) (lib.attrValues c.partitions)
    else if (c.type or null) == "table" then
      lib.concatMap (p: btrfsIn (p.content or null)) c.partitions
    else
      btrfsIn (c.content or null);
  dd = config.disko.devices;
  contents =
    map (d: d.content) (lib.attrValues dd.disk)
    ++ map (m: m.content) (lib.attrValues (dd.mdadm or { }))
    ++ lib.concatMap (vg: map (lv: lv.content) (lib.attrValues vg.lvs)) (lib.attrValues (dd.lvm_vg or { }));

  gptOf =
    d:
    if (d.content.type or null) == "gpt" then
      lib.sort (a: b: a.index < b.index) (
        map (p: {
          index = p._index;
          inherit (p) label type size;
        }) (lib.attrValues d.content.partitions)
      )
    else
      null;

  fileSystems = lib.sort (a: b: a.mountPoint < b.mountPoint) (
    map (f: {
      inherit (f) mountPoint device fsType options;
    }) (lib.attrValues config.fileSystems)
  );

  # NOCOW as the system itself states it: tmpfiles `h` lines with +C (both
  # the rules list and the settings form), mapped to the subvolume mounted
  # at that path.
  hPaths =
    lib.concatMap (
      r:
      let
        m = builtins.match "h[ \t]+([^ \t]+)[ \t]+[^ \t]+[ \t]+[^ \t]+[ \t]+[^ \t]+[ \t]+[^ \t]+[ \t]+[+=-]?[a-zA-Z]*C[a-zA-Z]*.*" (
          builtins.unsafeDiscardStringContext r
        );
      in
      lib.optional (m != null) (builtins.head m)
    ) config.systemd.tmpfiles.rules
    ++ lib.concatMap (
      s:
      lib.concatLists (
        lib.mapAttrsToList (
          path: types: lib.optional (types ? h && builtins.match ".*C.*" (types.h.argument or "") != null) path
        ) s
      )
    ) (lib.attrValues config.systemd.tmpfiles.settings);
  subvolAt =
    path:
    let
      f = config.fileSystems.${path} or null;
      opts = if f == null then [ ] else lib.filter (lib.hasPrefix "subvol=") f.options;
    in
    if opts == [ ] then
      throw "disko-format: tmpfiles sets +C on ${path}, which is not a Btrfs subvolume mount"
    else
      lib.removePrefix "/" (lib.removePrefix "subvol=" (builtins.head opts));

  format = config.system.build.format;
in
{
  script = format.content;
  interpreter = format.interpreter;
  packages = map (p: p.pname or (builtins.parseDrvName p.name).name) (dd._packages nixos.pkgs);
  disks = lib.mapAttrs (_: d: {
    inherit (d) device;
    gpt = gptOf d;
  }) dd.disk;
  btrfs = lib.concatMap btrfsIn contents;
  inherit fileSystems;
  swap = map (s: {
    inherit (s) device;
    randomEncryption = s.randomEncryption.enable;
  }) config.swapDevices;
  nocow = lib.unique (map subvolAt hPaths ++ (h.nocow or [ ]));
  failedAssertions = nixos.failedAssertions config;
}
