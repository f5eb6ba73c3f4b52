// Hand-made hostile images for the registry: layers written entry by entry (pax headers
// included), as an attacker would, and pushed as one OCI image. Shared by the tests that
// install them with --sysroot (hostile-layers.test.ts) and through atomhostd
// (hostile-layers-daemon.test.ts).
import tar from 'tar-stream';
import { pushBlob, pushManifest } from './fixtures.js';

export type Entry = { name: string; type?: 'file' | 'symlink' | 'link' | 'directory'; linkname?: string; content?: string | Buffer; mode?: number; pax?: Record<string, string> };

/** A tar made entry by entry (pax headers included), as an attacker would. */
export async function layerTar(entries: Entry[], globalPath?: string): Promise<Buffer> {
  const pack = tar.pack();
  if (globalPath) pack.entry({ name: 'pax_global_header', type: 'pax-global-header', pax: { path: globalPath } } as never);
  for (const e of entries) {
    const header = { name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: e.mode ?? 0o644, pax: e.pax };
    if (!e.type || e.type === 'file') pack.entry(header, e.content ?? 'x');
    else pack.entry(header);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** An image of several hand-made layers, pushed to REGISTRY as hostile:TAG, running CMD. */
export async function pushLayers(registry: string, tag: string, layers: Buffer[], cmd: string[] = ['/bin/sh']): Promise<void> {
  const digests = [];
  for (const l of layers) digests.push({ digest: await pushBlob(registry, 'hostile', l), size: l.length });
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: cmd }, rootfs: { type: 'layers', diff_ids: digests.map((d) => d.digest) } }));
  const configDigest = await pushBlob(registry, 'hostile', config);
  await pushManifest(registry, 'hostile', tag, {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: digests.map((d) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...d })),
  }, 'application/vnd.oci.image.manifest.v1+json');
}
