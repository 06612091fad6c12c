import { createRequire } from 'node:module';
import type * as SigstoreBundle from '@sigstore/bundle';
import type * as ProtobufSpecs from '@sigstore/protobuf-specs';
import type * as SigstoreSign from '@sigstore/sign';
import type * as SigstoreVerify from '@sigstore/verify';

// The sigstore libraries (and the HTTP stack and protobuf specs under them)
// cost 20-30 MiB of RSS once loaded. A collector signing with a local key
// and no Rekor never needs them: each is required the first time a Fulcio
// signer, a Rekor or TSA witness, a bundle check or a verification asks for
// it, not when the package is imported. require() caches the module.
const requireLazy = createRequire(import.meta.url);

/** `@sigstore/bundle`, loaded on first use. */
export const sigstoreBundle = (): typeof SigstoreBundle => requireLazy('@sigstore/bundle');
/** `@sigstore/sign`, loaded on first use. */
export const sigstoreSign = (): typeof SigstoreSign => requireLazy('@sigstore/sign');
/** `@sigstore/verify`, loaded on first use. */
export const sigstoreVerify = (): typeof SigstoreVerify => requireLazy('@sigstore/verify');
/** `@sigstore/protobuf-specs`, loaded on first use. */
export const protobufSpecs = (): typeof ProtobufSpecs => requireLazy('@sigstore/protobuf-specs');
