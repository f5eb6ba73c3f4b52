// Provisioning a 2 GiB image: `atomhost kickstart apply` against the same steps done by
// hand with the raw tools (sfdisk, mkfs, ostree admin init-fs/os-init/pull/deploy), side by
// side in one run: wall time and bytes written (blocks allocated in the sparse image).
import { writeFile, rm, mkdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildOsTree, commitTree, initArchiveRepo } from '../sandbox/os-tree.js';
import { serveDirectory } from '../sandbox/http-server.js';
import { makeScratch } from '../sandbox/scratch.js';
import { compare, median, type BenchResult } from './report.js';

const CLI = new URL('../cli/main.js', import.meta.url).pathname;
const REF = 'benchos/x86_64/stable';

const RAW = `set -euo pipefail
img=$1; url=$2; m=$3
truncate -s 2G "$img"
printf 'label: gpt\\nsize=1MiB, type=21686148-6449-6E6F-744E-656564454649\\nsize=200MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\\nsize=1024MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\\ntype=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709\\n' | sfdisk --quiet "$img"
dev=$(losetup --find --show --partscan "$img")
partx -u "$dev" || true
for i in $(seq 100); do [ -e "\${dev}p4" ] && break; sleep 0.05; done
mkfs.vfat -F 32 "\${dev}p2" >/dev/null
mkfs.xfs -f -q "\${dev}p3"
mkfs.xfs -f -q "\${dev}p4"
mount "\${dev}p4" "$m"; mkdir -p "$m/boot"; mount "\${dev}p3" "$m/boot"
ostree admin init-fs "$m" >/dev/null
ostree admin os-init --sysroot="$m" benchos >/dev/null
ostree remote add --repo="$m/ostree/repo" --no-gpg-verify origin "$url"
ostree pull --repo="$m/ostree/repo" origin ${REF} >/dev/null
uuid=$(blkid -p -s UUID -o value "\${dev}p4")
ostree admin deploy --sysroot="$m" --os=benchos --karg=root=UUID=$uuid --karg=rw --karg=console=ttyS0 origin:${REF} >/dev/null
umount "$m/boot"; umount "$m"
losetup -d "$dev"
`;

export async function benchKickstart(): Promise<BenchResult> {
  const scratch = await makeScratch('atomhost-bench-ks-', 6144);
  const repo = join(scratch.dir, 'repo');
  const tree = join(scratch.dir, 'tree');
  await initArchiveRepo(repo);
  await buildOsTree(tree, { osname: 'benchos', version: '1.0', fillerBytes: 64 * 1024 * 1024 });
  await commitTree(repo, REF, tree, '1.0');
  const server = await serveDirectory(repo);
  const ks = join(scratch.dir, 'bench.ks');
  await writeFile(
    ks,
    `ostreesetup --osname=benchos --remote=origin --url=${server.url} --ref=${REF} --nogpg\nzerombr\nclearpart --all\nreqpart --add-boot\npart / --fstype=xfs --grow\nbootloader --append="console=ttyS0"\nrootpw --lock\n`,
  );
  const script = join(scratch.dir, 'raw.sh');
  await writeFile(script, RAW);
  const mnt = join(scratch.dir, 'mnt');
  await mkdir(mnt);

  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const ours: number[] = [];
  const raw: number[] = [];
  let oursBytes = 0;
  let rawBytes = 0;
  try {
    for (let i = 0; i < rounds; i++) {
      const a = join(scratch.dir, 'atomhost.img');
      const b = join(scratch.dir, 'raw.img');
      await rm(a, { force: true });
      await rm(b, { force: true });
      let t = process.hrtime.bigint();
      await execa(process.execPath, [CLI, 'kickstart', 'apply', ks, '--image', a, '--size', '2G']);
      ours.push(Number(process.hrtime.bigint() - t) / 1e9);
      t = process.hrtime.bigint();
      await execa('bash', [script, b, server.url, mnt]);
      raw.push(Number(process.hrtime.bigint() - t) / 1e9);
      oursBytes = (await stat(a)).blocks * 512;
      rawBytes = (await stat(b)).blocks * 512;
    }
  } finally {
    if (existsSync(mnt)) await execa('umount', ['-R', mnt], { reject: false });
    await server.close();
    await scratch.dispose();
  }
  return {
    name: 'kickstart apply: provision a 2 GiB image (GPT, EFI + /boot + / XFS, 64 MiB OS tree)',
    rows: [
      compare('atomhost kickstart apply (wall)', 's', median(ours), 'sfdisk+mkfs+ostree by hand', median(raw), '≤ 1.2×'),
      compare('bytes written (allocated in the image)', 'bytes', oursBytes, 'by hand', rawBytes, '≤ 1.2×'),
    ],
    notes: [`median of ${rounds} rounds, alternating; atomhost also writes /etc, the revision record and the fstab`],
  };
}
