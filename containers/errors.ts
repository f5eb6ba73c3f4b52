// Typed errors of the system-container machinery; each names the image, layer or field.
import { AtomhostError } from '../core/errors.js';

export class RegistryError extends AtomhostError {
  constructor(message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super('AH_ERR_REGISTRY', message, { details, cause });
    this.name = 'RegistryError';
  }
}

export class DigestMismatchError extends AtomhostError {
  constructor(what: string, expected: string, actual: string) {
    super('AH_ERR_DIGEST_MISMATCH', `${what}: digest mismatch (expected ${expected}, got ${actual})`, { details: { expected, actual } });
    this.name = 'DigestMismatchError';
  }
}

export class UnsafeLayerError extends AtomhostError {
  constructor(layer: string, entry: string, why: string) {
    super('AH_ERR_UNSAFE_LAYER', `layer ${layer}: entry ${JSON.stringify(entry)} ${why}; nothing was stored`, { details: { layer, entry } });
    this.name = 'UnsafeLayerError';
  }
}

export class UnsupportedMediaTypeError extends AtomhostError {
  constructor(image: string, mediaType: string) {
    super('AH_ERR_UNSUPPORTED', `${image}: unsupported media type ${mediaType}`, { details: { image, mediaType } });
    this.name = 'UnsupportedMediaTypeError';
  }
}

/** An image policy.json refuses: names the image, the policy file and the entry that decided (nothing was stored). */
export class ImagePolicyRefusedError extends AtomhostError {
  constructor(image: string, file: string, entry: string, why: string) {
    super('AH_ERR_SIGNATURE', `refused ${image}: ${file}: ${entry}: ${why}; nothing was pulled`, { details: { image, file, entry } });
    this.name = 'ImagePolicyRefusedError';
  }
}

/**
 * A new or updated container failed to start, and the previous unit and container were put
 * back before any revision was made (containers/lifecycle.ts). atomhostd journals it under a
 * MESSAGE_ID of its own, so `journalctl MESSAGE_ID=…` finds why an update did not stick.
 */
export class ContainerStartFailedError extends AtomhostError {
  readonly container: string;
  readonly reason: string;
  readonly journal: string[];
  constructor(title: string, container: string, reason: string, journal: string[], cause?: unknown) {
    const lines = journal.length
      ? `; last log lines:\n  ${journal.join('\n  ')}`
      : `; ${container}.service wrote nothing to the journal (\`systemctl status ${container}.service\` shows systemd's reason)`;
    super('AH_ERR_FAILED', `${title}: ${container} failed to start (${reason})${lines}; the previous state was restored`, { cause, details: { name: container, journal } });
    this.name = 'ContainerStartFailedError';
    this.container = container;
    this.reason = reason;
    this.journal = journal;
  }
}
