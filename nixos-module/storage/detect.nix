# Picks a storage profile from a nixos-facter report (pure Nix, no system eval).
#
#   import ./detect.nix { inherit lib; } report
#   => { profile; candidates; detected; disks; }
#
# `report` is the parsed JSON (config.hardware.facter.report). Fields read,
# as nixos-facter (report version 1) writes them:
#   virtualisation                   top level: "none", "kvm", "qemu", ...
#   hardware.system.form_factor      "laptop", "desktop", ... (nested, not top level)
#   smbios.chassis(.chassis_type.name)  fallback for the form factor; an
#                                    object in older reports, a list in newer ones
#   hardware.disk[]                  one entry per whole disk:
#     unix_device_names              /dev/disk/by-id/..., /dev/nvme0n1, ...
#     resources[] type "size", unit "sectors": value_1 sectors of value_2 bytes
#     bus_type.name "NVME", class_list [.. "nvme"], driver "nvme"
#     hotplug "usb" / bus_type "USB" for removable sticks (ignored)
# See docs/explanation/hardware-detection.md for the rules and tolerances.
{ lib }:
report:
let
  hardware = report.hardware or { };
  virtualisation = report.virtualisation or null;

  # --- form factor -------------------------------------------------------
  formFactor = hardware.system.form_factor or null;
  chassisList =
    let
      c = report.smbios.chassis or [ ];
    in
    if builtins.isList c then c else [ c ];
  chassisNames = lib.filter builtins.isString (map (c: c.chassis_type.name or null) chassisList);
  # SMBIOS chassis types of portable machines (DMTF DSP0134, type 3).
  laptopChassis = [
    "Portable"
    "Laptop"
    "Notebook"
    "Sub Notebook"
    "Convertible"
    "Detachable"
  ];
  isLaptop = formFactor == "laptop" || lib.any (n: lib.elem n laptopChassis) chassisNames;
  formFactorText =
    if formFactor != null then
      formFactor
    else if chassisNames != [ ] then
      "unknown (chassis ${lib.concatStringsSep ", " chassisNames})"
    else
      "unknown";

  isKvmGuest = lib.elem virtualisation [
    "kvm"
    "qemu"
  ];

  # --- disks -------------------------------------------------------------
  sizeOf =
    disk:
    let
      r = lib.findFirst (x: (x.type or null) == "size" && (x.unit or null) == "sectors") null (
        disk.resources or [ ]
      );
    in
    if r == null then 0 else (r.value_1 or 0) * (r.value_2 or 512);

  isNvme =
    disk:
    (disk.bus_type.name or null) == "NVME"
    || lib.elem "nvme" (disk.class_list or [ ])
    || (disk.driver or null) == "nvme";

  isRemovable =
    disk: (disk.hotplug or null) == "usb" || (disk.bus_type.name or null) == "USB";

  # A stable name: a /dev/disk/by-id link made of model and serial (not the
  # eui./wwn. ones, and the shortest, which drops nvme's "_1" namespace
  # alias); else any by-id link; else the kernel name (/dev/nvme0n1,
  # /dev/sda); else whatever comes first.
  deviceOf =
    disk:
    let
      names = disk.unix_device_names or [ ];
      byId = lib.filter (lib.hasPrefix "/dev/disk/by-id/") names;
      idName = n: lib.removePrefix "/dev/disk/by-id/" n;
      opaque = n: builtins.match "(nvme-eui|nvme-nvme|wwn-|eui|nvme-uuid).*" (idName n) != null;
      named = lib.filter (n: !opaque n) byId;
      shortest =
        l:
        builtins.head (
          lib.sort (
            a: b: builtins.stringLength a < builtins.stringLength b || (builtins.stringLength a == builtins.stringLength b && a < b)
          ) l
        );
      kernel = lib.filter (n: lib.hasPrefix "/dev/" n && !lib.hasPrefix "/dev/disk/" n) names;
    in
    if named != [ ] then
      shortest named
    else if byId != [ ] then
      shortest byId
    else if disk ? unix_device_name then
      disk.unix_device_name
    else if kernel != [ ] then
      builtins.head kernel
    else if names != [ ] then
      builtins.head names
    else
      null;

  allDisks = map (d: {
    device = deviceOf d;
    kernelName = lib.findFirst (n: !lib.hasPrefix "/dev/disk/" n) (d.unix_device_name or null) (
      d.unix_device_names or [ ]
    );
    model = d.model or "unknown model";
    bytes = sizeOf d;
    nvme = isNvme d;
    removable = isRemovable d;
  }) (hardware.disk or [ ]);

  bySizeDesc = lib.sort (a: b: a.bytes > b.bytes);
  disks = bySizeDesc (lib.filter (d: !d.removable && d.device != null) allDisks);
  removable = lib.filter (d: d.removable) allDisks;
  nvmeCount = lib.length (lib.filter (d: d.nvme) disks);
  mainDisk = if disks == [ ] then null else builtins.head disks;

  # --- rules -------------------------------------------------------------
  GB = 1000 * 1000 * 1000;
  GiB = 1024 * 1024 * 1024;
  tolerance = 5; # percent
  # A server's nominal size N may have been read as GB (what providers sell)
  # or GiB (what lsblk and df print as "G"): accept from N GB - 5 % up to
  # N GiB + 5 %.
  sizeRange = n: {
    min = n * GB * (100 - tolerance) / 100;
    max = n * GiB * (100 + tolerance) / 100;
  };
  servers = {
    hetzner = 458;
    contabo = 536;
    ovh = 200;
  };
  serverMatches =
    name: mainDisk != null && (let r = sizeRange servers.${name}; in mainDisk.bytes >= r.min && mainDisk.bytes <= r.max);

  rules = {
    zephyrus = isLaptop && nvmeCount == 2;
    yoga = isLaptop && nvmeCount == 1;
    hetzner = isKvmGuest && serverMatches "hetzner";
    contabo = isKvmGuest && serverMatches "contabo";
    ovh = isKvmGuest && serverMatches "ovh";
  };
  candidates = lib.filter (n: rules.${n}) [
    "zephyrus"
    "yoga"
    "hetzner"
    "contabo"
    "ovh"
  ];

  # --- description -------------------------------------------------------
  # One decimal, integer arithmetic only.
  tenths = bytes: unit: (bytes * 10 + unit / 2) / unit;
  fmt = t: "${toString (t / 10)}.${toString (lib.mod t 10)}";
  gb = bytes: "${fmt (tenths bytes GB)} GB";
  describeDisk =
    d:
    "${d.device}${lib.optionalString (d.kernelName != null && d.kernelName != d.device) " (${d.kernelName})"}"
    + " ${if d.nvme then "NVMe" else "non-NVMe"} ${d.model}, ${gb d.bytes} (${fmt (tenths d.bytes GiB)} GiB)";
  diskText =
    if disks == [ ] then
      "no disks"
    else
      "${toString (lib.length disks)} disk(s) (${toString nvmeCount} NVMe): "
      + lib.concatMapStringsSep "; " describeDisk disks;
  removableText = lib.optionalString (removable != [ ]) (
    "; ignored removable: " + lib.concatMapStringsSep ", " (d: "${toString d.device} ${d.model}") removable
  );
  detected =
    "form factor ${formFactorText}, virtualisation ${
      if virtualisation == null then "unknown" else virtualisation
    }, ${diskText}${removableText}";
in
{
  profile = if lib.length candidates == 1 then builtins.head candidates else null;
  inherit candidates detected;
  disks = map (d: d.device) disks;
}
