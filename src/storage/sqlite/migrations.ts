/**
 * Numbered schema migrations, applied in order, each in its own transaction (see db.ts). Append only: a
 * released migration is never edited; a change is a new entry.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: registry, PKI, keyring, access keys, audit chain.
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

  CREATE TABLE kms_keys (
    key_id TEXT NOT NULL, version INTEGER NOT NULL, sealed BLOB NOT NULL, state TEXT NOT NULL,
    created_ms INTEGER NOT NULL, PRIMARY KEY (key_id, version)
  );

  CREATE TABLE thing_types (
    name TEXT PRIMARY KEY, id TEXT NOT NULL, description TEXT, searchable_attributes TEXT NOT NULL,
    deprecated INTEGER NOT NULL DEFAULT 0, deprecation_ms INTEGER, created_ms INTEGER NOT NULL
  );
  CREATE TABLE things (
    name TEXT PRIMARY KEY, id TEXT NOT NULL, type_name TEXT REFERENCES thing_types(name),
    attributes TEXT NOT NULL, version INTEGER NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL
  );
  CREATE INDEX things_type ON things(type_name);
  CREATE TABLE thing_groups (
    name TEXT PRIMARY KEY, id TEXT NOT NULL, parent_name TEXT REFERENCES thing_groups(name),
    description TEXT, attributes TEXT NOT NULL, version INTEGER NOT NULL, created_ms INTEGER NOT NULL
  );
  CREATE INDEX thing_groups_parent ON thing_groups(parent_name);
  CREATE TABLE thing_group_members (
    group_name TEXT NOT NULL REFERENCES thing_groups(name) ON DELETE CASCADE,
    thing_name TEXT NOT NULL REFERENCES things(name) ON DELETE CASCADE,
    PRIMARY KEY (group_name, thing_name)
  );
  CREATE INDEX thing_group_members_thing ON thing_group_members(thing_name);

  CREATE TABLE ca_certificates (
    id TEXT PRIMARY KEY, pem TEXT NOT NULL, subject TEXT NOT NULL, status TEXT NOT NULL,
    auto_registration TEXT NOT NULL, mode TEXT NOT NULL, own INTEGER NOT NULL DEFAULT 0,
    sealed_key BLOB, not_before_ms INTEGER NOT NULL, not_after_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, generation INTEGER NOT NULL
  );
  CREATE TABLE certificates (
    id TEXT PRIMARY KEY, pem TEXT NOT NULL, ca_id TEXT, serial TEXT NOT NULL, status TEXT NOT NULL,
    mode TEXT NOT NULL, not_before_ms INTEGER NOT NULL, not_after_ms INTEGER NOT NULL,
    revoked_ms INTEGER, revocation_reason INTEGER, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
    generation INTEGER NOT NULL
  );
  CREATE INDEX certificates_ca_serial ON certificates(ca_id, serial);
  CREATE INDEX certificates_created ON certificates(created_ms, id);

  CREATE TABLE policies (
    name TEXT PRIMARY KEY, default_version INTEGER NOT NULL, next_version INTEGER NOT NULL,
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, generation INTEGER NOT NULL
  );
  CREATE TABLE policy_versions (
    policy_name TEXT NOT NULL REFERENCES policies(name) ON DELETE CASCADE, version INTEGER NOT NULL,
    document TEXT NOT NULL, created_ms INTEGER NOT NULL, PRIMARY KEY (policy_name, version)
  );
  CREATE TABLE policy_targets (
    policy_name TEXT NOT NULL REFERENCES policies(name), target TEXT NOT NULL, created_ms INTEGER NOT NULL,
    PRIMARY KEY (policy_name, target)
  );
  CREATE INDEX policy_targets_target ON policy_targets(target);
  CREATE TABLE thing_principals (
    thing_name TEXT NOT NULL REFERENCES things(name), principal TEXT NOT NULL, type TEXT NOT NULL,
    created_ms INTEGER NOT NULL, PRIMARY KEY (thing_name, principal)
  );
  CREATE INDEX thing_principals_principal ON thing_principals(principal);

  -- Revocations outlive the certificate row: a revoked certificate stays on the CRL until it expires even when
  -- it is deleted from the registry (RFC 5280 §3.3).
  CREATE TABLE revocations (
    ca_id TEXT NOT NULL, serial TEXT NOT NULL, certificate_id TEXT NOT NULL, revoked_ms INTEGER NOT NULL,
    reason INTEGER, not_after_ms INTEGER NOT NULL, PRIMARY KEY (ca_id, serial)
  );

  CREATE TABLE registration_codes (code TEXT PRIMARY KEY, created_ms INTEGER NOT NULL);

  CREATE TABLE access_keys (
    id TEXT PRIMARY KEY, user_name TEXT NOT NULL, sealed_secret BLOB NOT NULL, status TEXT NOT NULL,
    created_ms INTEGER NOT NULL, last_used_ms INTEGER
  );

  CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, body TEXT NOT NULL, hash TEXT NOT NULL
  );
  `,
  // 2: gateway persistent sessions, their queued QoS 1 messages, and retained messages.
  `
  CREATE TABLE gateway_sessions (
    client_id TEXT PRIMARY KEY, protocol_version INTEGER NOT NULL, expiry_interval_sec INTEGER NOT NULL,
    disconnected_ms INTEGER, principal_id TEXT, subscriptions TEXT NOT NULL, updated_ms INTEGER NOT NULL
  );
  CREATE TABLE gateway_session_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT NOT NULL REFERENCES gateway_sessions(client_id) ON DELETE CASCADE,
    topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,
    properties TEXT, expires_ms INTEGER
  );
  CREATE INDEX gateway_session_messages_client ON gateway_session_messages(client_id, seq);
  CREATE TABLE gateway_retained (
    topic TEXT PRIMARY KEY, payload BLOB NOT NULL, qos INTEGER NOT NULL, properties TEXT, expires_ms INTEGER,
    updated_ms INTEGER NOT NULL
  );
`,
]
