-- The sharded keyspace: the users, spread over the shards by a hash of their ID; the two lookup
-- tables that make usernames and emails unique across all shards, each spread by a hash of its
-- own key; and the outcomes of idempotent requests.
--
-- users is the table of the service's migration 1, less AUTO_INCREMENT: IDs come from the
-- sequence usergraph_global.users_seq, and a shard counting on its own would hand out IDs that
-- another shard has already used. The unique keys stay, for the look-ups by key, but they only
-- see one shard: global uniqueness is the lookup vindexes' job.
CREATE TABLE IF NOT EXISTS users (
	id BIGINT NOT NULL,
	username VARCHAR(32) NOT NULL,
	email VARCHAR(254) NOT NULL,
	username_key VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	email_key VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	version BIGINT NOT NULL DEFAULT 1,
	created_at DATETIME(6) NOT NULL,
	updated_at DATETIME(6) NOT NULL,
	PRIMARY KEY (id),
	UNIQUE KEY users_username_key (username_key),
	UNIQUE KEY users_email_key (email_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- A key's row names the keyspace ID (the shard) of the user who holds it. The keys are compared
-- byte for byte, as in users.
CREATE TABLE IF NOT EXISTS users_username_lkp (
	username_key VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	keyspace_id VARBINARY(16) NOT NULL,
	PRIMARY KEY (username_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS users_email_lkp (
	email_key VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
	keyspace_id VARBINARY(16) NOT NULL,
	PRIMARY KEY (email_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The outcomes of requests sent with an Idempotency-Key (the service's migration 2), spread by a
-- hash of their ID, which is itself a hash of the caller and the key: every statement on it names
-- one ID, but the purge of expired keys, which visits every shard.
CREATE TABLE IF NOT EXISTS idempotency_keys (
	id BINARY(32) NOT NULL,
	fingerprint BINARY(32) NOT NULL,
	token BINARY(16) NOT NULL,
	locked_until BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	status SMALLINT NOT NULL DEFAULT 0,
	headers BLOB NULL,
	body MEDIUMBLOB NULL,
	PRIMARY KEY (id),
	KEY idempotency_keys_expires_at (expires_at)
) ENGINE=InnoDB;
