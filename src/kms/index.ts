export { KeyVersionState, isKeyVersionState } from './ports.ts'
export type { KeyringStore, KeyVersionRecord } from './ports.ts'
export { LocalKeyring, KeyringOperation } from './keyring.ts'
export type { DataKey, EncryptionContext, KeyringUseEvent, KeyVersionInfo, LocalKeyringOptions } from './keyring.ts'
