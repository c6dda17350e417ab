-- The unsharded keyspace: what there must be exactly one of.

-- The IDs of users. vttablet hands them out from blocks of `cache` IDs that it reserves by
-- advancing next_id, so an ID is never handed out twice, even after a restart (which skips the
-- rest of its block).
CREATE TABLE IF NOT EXISTS users_seq (
	id INT NOT NULL,
	next_id BIGINT,
	cache BIGINT,
	PRIMARY KEY (id)
) COMMENT 'vitess_sequence';

-- The service's record of its migrations, as it creates it on a single database. Here it lives
-- in the unsharded keyspace, and the routing rules send the service's unqualified references to
-- it while the service's connection names the sharded keyspace.
CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER NOT NULL PRIMARY KEY,
	applied_at VARCHAR(40) NOT NULL
);
