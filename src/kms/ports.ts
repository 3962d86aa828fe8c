/**
 * The states a master key version can be in. `enabled` versions encrypt (the highest one only) and decrypt;
 * `disabled` versions refuse every operation (ERR_KMS_KEY_DISABLED) but keep their material, so they can be
 * enabled again (AWS KMS DisableKey / EnableKey, Vault transit `min_decryption_version`).
 */
export const KeyVersionState = { Enabled: 'enabled', Disabled: 'disabled' } as const
export type KeyVersionState = (typeof KeyVersionState)[keyof typeof KeyVersionState]

/** Narrows an unknown value (e.g. a DB column) to a {@link KeyVersionState}. */
export const isKeyVersionState = (v: unknown): v is KeyVersionState =>
  v === KeyVersionState.Enabled || v === KeyVersionState.Disabled

/**
 * One stored version of a master key. `sealed` is the version's key material encrypted under the
 * key-encryption key (see `LocalKeyring` for the format); a store never sees key material in clear.
 */
export interface KeyVersionRecord {
  /** The master key's id (e.g. `master`). */
  readonly keyId: string
  /** 1, 2, 3… in creation order; unique per `keyId`. */
  readonly version: number
  /** Opaque sealed bytes; stored and returned byte for byte. */
  readonly sealed: Buffer
  readonly state: KeyVersionState
  readonly createdMs: number
}

/**
 * Persistence for master key versions. Implemented in `storage/sqlite` (and later `storage/postgres`); every
 * implementation must pass `storage/contract/keyring-store.contract.ts`.
 *
 * Contract:
 * - Versions are never deleted or overwritten by this port; only their `state` changes.
 * - `insertVersion` is insert-if-absent: when `(keyId, version)` already exists it resolves `false` and changes
 *   nothing, so two nodes that rotate (or first-open) at the same time cannot clobber each other's key.
 * - Reads return fresh copies: mutating a returned `sealed` buffer never changes what is stored.
 * - Methods reject only for storage failures (ERR_STORAGE_*), never for "not found".
 */
export interface KeyringStore {
  /** Every version of `keyId`, ascending by `version`; `[]` when the key has no versions. */
  listVersions (keyId: string): Promise<KeyVersionRecord[]>
  /** Stores a new version. Resolves `true` when inserted, `false` (changing nothing) when it already existed. */
  insertVersion (record: KeyVersionRecord): Promise<boolean>
  /** Sets the state of one version. Resolves `true` when it exists (even if unchanged), `false` when it does not. */
  updateState (keyId: string, version: number, state: KeyVersionState): Promise<boolean>
}
