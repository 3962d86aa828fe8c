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
  // 3: audit search columns, signed digests, signing keys, stream cursors. The *_k columns hold a 53-bit hash of
  // the name (audit-store.ts key53), which keeps the indexes small enough for 100k appends/s; every match is
  // re-checked against the record. Rows written before this migration get their keys when the store opens.
  // No time index: record times never decrease along seq, so a time bound is a binary search on the primary key.
  // Actor and thing have thousands of values: their indexes lead with the 65,536-record block (seq >> 16), so a
  // batch of appends touches a few index pages instead of one per device; a search walks the blocks in order.
  `
  ALTER TABLE audit_events ADD COLUMN actor_k INTEGER;
  ALTER TABLE audit_events ADD COLUMN action_k INTEGER;
  ALTER TABLE audit_events ADD COLUMN thing_k INTEGER;
  ALTER TABLE audit_events ADD COLUMN outcome TEXT;
  CREATE INDEX audit_events_actor ON audit_events(seq >> 16, actor_k);
  CREATE INDEX audit_events_action ON audit_events(action_k);
  CREATE INDEX audit_events_thing ON audit_events(seq >> 16, thing_k) WHERE thing_k IS NOT NULL;
  CREATE INDEX audit_events_outcome ON audit_events(outcome) WHERE outcome <> 'success';

  CREATE TABLE audit_digests (
    digest_seq INTEGER PRIMARY KEY, to_seq INTEGER NOT NULL, signed_ms INTEGER NOT NULL,
    body TEXT NOT NULL, hash TEXT NOT NULL, signature TEXT NOT NULL
  );
  CREATE TABLE audit_keys (
    fingerprint TEXT PRIMARY KEY, public_key_pem TEXT NOT NULL, sealed_private BLOB,
    created_ms INTEGER NOT NULL, retired_ms INTEGER
  );
  CREATE TABLE audit_cursors (name TEXT PRIMARY KEY, cursor TEXT NOT NULL, updated_ms INTEGER NOT NULL);
  `,
  // 4: device shadows (sealed documents; a row without `sealed` is a deleted shadow's tombstone, kept so that a
  // shadow re-created within 48 hours continues its version) and payload schemas (issue #6).
  `
  CREATE TABLE shadows (
    thing_name TEXT NOT NULL, shadow_name TEXT NOT NULL, version INTEGER NOT NULL, sealed BLOB,
    updated_ms INTEGER NOT NULL, deleted_ms INTEGER, PRIMARY KEY (thing_name, shadow_name)
  );
  CREATE TABLE payload_schemas (
    name TEXT PRIMARY KEY, topic_filter TEXT NOT NULL, schema_json TEXT NOT NULL, description TEXT,
    version INTEGER NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL
  );
  `,
  // 5: operator identities (issue #5): IAM users, groups, roles, policies and attachments, MFA devices, recovery
  // codes, STS sessions, access-key last use. Built-in roles and policies are code, so assignments and attachments
  // name them without a foreign key. Every access key existing before this migration was all-powerful: its owner
  // becomes a user with the built-in admin role, so upgrades keep working.
  `
  CREATE TABLE iam_users (
    name TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, created_ms INTEGER NOT NULL, tags TEXT NOT NULL,
    password_hash TEXT, password_changed_ms INTEGER
  );
  CREATE TABLE iam_groups (name TEXT PRIMARY KEY, id TEXT NOT NULL, created_ms INTEGER NOT NULL);
  CREATE TABLE iam_group_members (
    group_name TEXT NOT NULL REFERENCES iam_groups(name) ON DELETE CASCADE,
    user_name TEXT NOT NULL REFERENCES iam_users(name) ON DELETE CASCADE,
    PRIMARY KEY (group_name, user_name)
  );
  CREATE INDEX iam_group_members_user ON iam_group_members(user_name);
  CREATE TABLE iam_roles (
    name TEXT PRIMARY KEY, id TEXT NOT NULL, description TEXT, trust_policy TEXT NOT NULL, max_session_sec INTEGER NOT NULL,
    created_ms INTEGER NOT NULL, tags TEXT NOT NULL
  );
  CREATE TABLE iam_user_roles (
    user_name TEXT NOT NULL REFERENCES iam_users(name) ON DELETE CASCADE, role_name TEXT NOT NULL,
    PRIMARY KEY (user_name, role_name)
  );
  CREATE INDEX iam_user_roles_role ON iam_user_roles(role_name);
  CREATE TABLE iam_policies (
    name TEXT PRIMARY KEY, id TEXT NOT NULL, description TEXT, document TEXT NOT NULL, version INTEGER NOT NULL,
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL
  );
  CREATE TABLE iam_attachments (
    policy_name TEXT NOT NULL, target_type TEXT NOT NULL, target_name TEXT NOT NULL,
    PRIMARY KEY (target_type, target_name, policy_name)
  );
  CREATE INDEX iam_attachments_policy ON iam_attachments(policy_name);
  CREATE TABLE iam_mfa_devices (
    user_name TEXT PRIMARY KEY REFERENCES iam_users(name) ON DELETE CASCADE, sealed_secret BLOB NOT NULL, status TEXT NOT NULL,
    last_step INTEGER NOT NULL, created_ms INTEGER NOT NULL, enabled_ms INTEGER
  );
  CREATE TABLE iam_recovery_codes (
    user_name TEXT NOT NULL REFERENCES iam_users(name) ON DELETE CASCADE, code_hash TEXT NOT NULL, created_ms INTEGER NOT NULL,
    used_ms INTEGER, PRIMARY KEY (user_name, code_hash)
  );
  CREATE TABLE iam_sessions (
    access_key_id TEXT PRIMARY KEY, sealed_secret BLOB NOT NULL, token_hash TEXT NOT NULL, principal_type TEXT NOT NULL,
    principal_name TEXT NOT NULL, session_name TEXT, source_user TEXT, mfa INTEGER NOT NULL, mfa_ms INTEGER, origin TEXT NOT NULL,
    created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, source_ip TEXT
  );
  CREATE INDEX iam_sessions_principal ON iam_sessions(principal_type, principal_name);
  CREATE INDEX iam_sessions_source_user ON iam_sessions(source_user);
  CREATE INDEX iam_sessions_expires ON iam_sessions(expires_ms);
  ALTER TABLE access_keys ADD COLUMN last_used_service TEXT;
  ALTER TABLE access_keys ADD COLUMN last_used_region TEXT;
  CREATE INDEX access_keys_user ON access_keys(user_name, created_ms);
  INSERT INTO iam_users (name, id, created_ms, tags)
    SELECT user_name, 'AIDA' || substr(upper(hex(randomblob(9))), 1, 17), MIN(created_ms), '{}' FROM access_keys GROUP BY user_name;
  INSERT INTO iam_user_roles (user_name, role_name) SELECT name, 'admin' FROM iam_users;
  `,
  // 6: every device connection reads its attachments, policies and groups by principal or thing; these indexes
  // return them in name order without a temporary sort (the exclusive-thing-first pick uses two lookups on the
  // first one: SqliteRegistryStore.getPrincipalThing).
  `
  DROP INDEX thing_principals_principal;
  CREATE INDEX thing_principals_principal ON thing_principals(principal, thing_name);
  DROP INDEX policy_targets_target;
  CREATE INDEX policy_targets_target ON policy_targets(target, policy_name);
  DROP INDEX thing_group_members_thing;
  CREATE INDEX thing_group_members_thing ON thing_group_members(thing_name, group_name);
  `,
]
