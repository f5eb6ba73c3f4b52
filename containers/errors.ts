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
