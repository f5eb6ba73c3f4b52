// Test-only registry helpers: hand-made manifests and layers (malicious ones included),
// on top of the shared registry and image builder in sandbox/registry.ts.
export { blobPath, buildAndPush, freePort, startRegistry, type Registry } from '../../sandbox/registry.js';

/** Pushes a blob with a monolithic upload; returns its digest. */
export async function pushBlob(registry: string, name: string, data: Buffer): Promise<string> {
  const { createHash } = await import('node:crypto');
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const start = await fetch(`http://${registry}/v2/${name}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`upload start: ${start.status}`);
  const loc = new URL(start.headers.get('location')!, `http://${registry}`);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', body: new Uint8Array(data), headers: { 'content-type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`upload: ${put.status} ${await put.text()}`);
  return digest;
}

export async function pushManifest(registry: string, name: string, tag: string, manifest: object, mediaType: string): Promise<string> {
  const body = Buffer.from(JSON.stringify(manifest));
  const r = await fetch(`http://${registry}/v2/${name}/manifests/${tag}`, { method: 'PUT', body: new Uint8Array(body), headers: { 'content-type': mediaType } });
  if (r.status !== 201) throw new Error(`manifest put: ${r.status} ${await r.text()}`);
  return r.headers.get('docker-content-digest')!;
}

/** A one-layer image made by hand from a tar of the given entries (to push malicious layers). */
export async function pushRawImage(registry: string, name: string, tag: string, entries: { name: string; type?: 'file' | 'symlink' | 'link' | 'directory'; linkname?: string; content?: string }[]): Promise<string> {
  const tar = (await import('tar-stream')).default;
  const pack = tar.pack();
  for (const e of entries) {
    const header = { name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: 0o644 } as const;
    if (!e.type || e.type === 'file') pack.entry(header, e.content ?? 'x');
    else pack.entry(header);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  const layer = Buffer.concat(chunks);
  const layerDigest = await pushBlob(registry, name, layer);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [layerDigest] } }));
  const configDigest = await pushBlob(registry, name, config);
  return pushManifest(
    registry,
    name,
    tag,
    {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    },
    'application/vnd.oci.image.manifest.v1+json',
  );
}
