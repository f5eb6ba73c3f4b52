// ${basearch} in an ostreesetup --ref: Anaconda replaces it with the installing machine's
// RPM base architecture (Fedora's kickstarts write fedora/29/${basearch}/atomic-host), and
// so does apply. Node's names for the architectures, mapped to RPM's.
const RPM_BASEARCH: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', ppc64: 'ppc64le', s390x: 's390x', ia32: 'i386', arm: 'armhfp' };

export function basearch(arch: string = process.arch): string {
  return RPM_BASEARCH[arch] ?? arch;
}

export function substituteBasearch(ref: string, arch: string = basearch()): string {
  return ref.replaceAll('${basearch}', arch);
}
