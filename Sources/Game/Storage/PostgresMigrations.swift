public import Logging
public import PostgresNIO
import GameRules

/// Versioned schema changes for PostgreSQL. Each runs in its own transaction together with its
/// row in `ipquest_migrations`, so a failed migration leaves the schema as it was (PostgreSQL
/// DDL is transactional). All of it runs under a session advisory lock, so instances starting
/// at the same time apply each migration once.
public enum PostgresMigrations {
    public struct Migration: Sendable {
        public var version: Int
        public var name: String
        public var sql: [String]
    }

    /// Advisory lock keys (arbitrary constants, "IPQ" + purpose).
    static let migrationLockKey: Int64 = 0x4950_5100_0000_0001
    static let leaderLockKey: Int64 = 0x4950_5100_0000_0002

    public static let all: [Migration] = [
        Migration(version: 1, name: "claims", sql: [
            // One row per address; ip is the IPv4 address as an unsigned 32-bit value (block = ip >> 24).
            // seq orders commits: every batch takes the next range from ipquest_state under its row
            // lock, so rows become visible in seq order and `seq > cursor` is a complete change feed.
            """
            CREATE TABLE claims (
                ip bigint PRIMARY KEY CHECK (ip BETWEEN 0 AND 4294967295),
                name text NOT NULL,
                claimed_at bigint NOT NULL,
                seq bigint NOT NULL,
                writer bigint NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX claims_seq ON claims (seq)",
            "CREATE TABLE ipquest_state (id int PRIMARY KEY CHECK (id = 1), last_seq bigint NOT NULL)",
            "INSERT INTO ipquest_state (id, last_seq) VALUES (1, 0)",
            // All-time aggregates, maintained in the claim batch's transaction.
            "CREATE TABLE player_scores (name text PRIMARY KEY, addresses bigint NOT NULL)",
            """
            CREATE TABLE block_scores (
                block smallint NOT NULL CHECK (block BETWEEN 0 AND 255),
                name text NOT NULL,
                addresses bigint NOT NULL,
                PRIMARY KEY (block, name)
            )
            """,
        ]),
        // Where the address was when claimed: country (ISO code), AS number, cloud provider.
        Migration(version: 2, name: "claim-origin", sql: [
            "ALTER TABLE claims ADD COLUMN country text, ADD COLUMN asn bigint, ADD COLUMN provider text",
        ]),
        // A batch of claims in one call (one round trip). Empty strings and 0 stand for NULL
        // because the client binds arrays of non-optional values. Statements in a PL/pgSQL
        // function take a fresh snapshot each (READ COMMITTED), so the upsert runs after the
        // ipquest_state row lock is held and sees every earlier batch: `old` is the true
        // previous owner and the aggregates stay exact.
        Migration(version: 3, name: "append-function", sql: [
            """
            CREATE FUNCTION ipquest_append(p_ip bigint[], p_name text[], p_at bigint[], p_country text[], p_asn bigint[],
                                           p_provider text[], p_writer bigint) RETURNS void LANGUAGE plpgsql AS $$
            DECLARE
                n bigint := cardinality(p_ip);
                base bigint;
            BEGIN
                UPDATE ipquest_state SET last_seq = last_seq + n WHERE id = 1 RETURNING last_seq - n INTO base;
                WITH input AS (
                    SELECT t.ip, t.name, t.claimed_at, NULLIF(t.country, '') AS country, NULLIF(t.asn, 0) AS asn,
                           NULLIF(t.provider, '') AS provider, base + t.ord AS seq
                    FROM unnest(p_ip, p_name, p_at, p_country, p_asn, p_provider)
                         WITH ORDINALITY AS t(ip, name, claimed_at, country, asn, provider, ord)
                ), old AS (
                    SELECT c.ip, c.name FROM claims c JOIN input i ON c.ip = i.ip
                ), up AS (
                    INSERT INTO claims (ip, name, claimed_at, country, asn, provider, seq, writer)
                    SELECT i.ip, i.name, i.claimed_at, i.country, i.asn, i.provider, i.seq, p_writer FROM input i
                    ON CONFLICT (ip) DO UPDATE SET name = excluded.name, claimed_at = excluded.claimed_at,
                        country = excluded.country, asn = excluded.asn, provider = excluded.provider,
                        seq = excluded.seq, writer = excluded.writer
                ), delta AS (
                    SELECT (x.ip >> 24)::smallint AS block, x.name, sum(x.d)::bigint AS d
                    FROM (SELECT i.ip, i.name, 1 AS d FROM input i UNION ALL SELECT o.ip, o.name, -1 FROM old o) x
                    GROUP BY 1, 2 HAVING sum(x.d) <> 0
                ), b AS (
                    INSERT INTO block_scores (block, name, addresses) SELECT delta.block, delta.name, delta.d FROM delta
                    ON CONFLICT (block, name) DO UPDATE SET addresses = block_scores.addresses + excluded.addresses
                )
                INSERT INTO player_scores (name, addresses)
                SELECT delta.name, sum(delta.d)::bigint FROM delta GROUP BY delta.name HAVING sum(delta.d) <> 0
                ON CONFLICT (name) DO UPDATE SET addresses = player_scores.addresses + excluded.addresses;
            END
            $$
            """,
        ]),
        // The previous owner comes back from the upsert itself (the row keeps it in
        // `previous_name`), instead of a join on `claims` first: that join's cached plan was
        // made while the table was small, so it went on scanning the whole table for every
        // batch as the table grew (9.6k claims/s at 256 clients on fresh addresses, 15.9k with
        // a lookup per address, no lookup at all now).
        Migration(version: 4, name: "append-previous-owner", sql: [
            "ALTER TABLE claims ADD COLUMN previous_name text",
            """
            CREATE OR REPLACE FUNCTION ipquest_append(p_ip bigint[], p_name text[], p_at bigint[], p_country text[], p_asn bigint[],
                                           p_provider text[], p_writer bigint) RETURNS void LANGUAGE plpgsql AS $$
            DECLARE
                n bigint := cardinality(p_ip);
                base bigint;
            BEGIN
                UPDATE ipquest_state SET last_seq = last_seq + n WHERE id = 1 RETURNING last_seq - n INTO base;
                WITH input AS (
                    SELECT t.ip, t.name, t.claimed_at, NULLIF(t.country, '') AS country, NULLIF(t.asn, 0) AS asn,
                           NULLIF(t.provider, '') AS provider, base + t.ord AS seq
                    FROM unnest(p_ip, p_name, p_at, p_country, p_asn, p_provider)
                         WITH ORDINALITY AS t(ip, name, claimed_at, country, asn, provider, ord)
                ), up AS (
                    INSERT INTO claims AS c (ip, name, claimed_at, country, asn, provider, seq, writer)
                    SELECT i.ip, i.name, i.claimed_at, i.country, i.asn, i.provider, i.seq, p_writer FROM input i
                    ON CONFLICT (ip) DO UPDATE SET name = excluded.name, claimed_at = excluded.claimed_at,
                        country = excluded.country, asn = excluded.asn, provider = excluded.provider,
                        seq = excluded.seq, writer = excluded.writer, previous_name = c.name
                    RETURNING c.ip, c.previous_name
                ), delta AS (
                    SELECT (x.ip >> 24)::smallint AS block, x.name, sum(x.d)::bigint AS d
                    FROM (SELECT i.ip, i.name, 1 AS d FROM input i
                          UNION ALL SELECT u.ip, u.previous_name, -1 FROM up u WHERE u.previous_name IS NOT NULL) x
                    GROUP BY 1, 2 HAVING sum(x.d) <> 0
                ), b AS (
                    INSERT INTO block_scores (block, name, addresses) SELECT delta.block, delta.name, delta.d FROM delta
                    ON CONFLICT (block, name) DO UPDATE SET addresses = block_scores.addresses + excluded.addresses
                )
                INSERT INTO player_scores (name, addresses)
                SELECT delta.name, sum(delta.d)::bigint FROM delta GROUP BY delta.name HAVING sum(delta.d) <> 0
                ON CONFLICT (name) DO UPDATE SET addresses = player_scores.addresses + excluded.addresses;
            END
            $$
            """,
        ]),
        // Which table a board checkpoint was taken from (issue 24). A checkpoint records the
        // feed position it reaches and this id; an instance resumes from it only while the id
        // is the same, so rows removed behind the feed's back (DELETE, TRUNCATE: the trigger
        // draws a new id) or another database make every checkpoint stale, never trusted.
        Migration(version: 5, name: "board-identity", sql: [
            "ALTER TABLE ipquest_state ADD COLUMN board_id bigint NOT NULL DEFAULT 0",
            "UPDATE ipquest_state SET board_id = 1 + (random() * 4e18)::bigint",
            """
            CREATE FUNCTION ipquest_new_board_id() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE ipquest_state SET board_id = 1 + (random() * 4e18)::bigint WHERE id = 1;
                RETURN NULL;
            END
            $$
            """,
            """
            CREATE TRIGGER claims_removed AFTER DELETE OR TRUNCATE ON claims
                FOR EACH STATEMENT EXECUTE FUNCTION ipquest_new_board_id()
            """,
        ]),
    ]

    public struct Status: Sendable, Equatable {
        public var applied: [Int]
        public var pending: [Int]
    }

    static let createTable = """
        CREATE TABLE IF NOT EXISTS ipquest_migrations (
            version int PRIMARY KEY,
            name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """

    /// Applies pending migrations (up to `target`, default all) or, with `dryRun`, only reports
    /// them. Returns the status before running.
    @discardableResult
    public static func migrate(
        on connection: PostgresConnection, migrations: [Migration] = all, upTo target: Int? = nil, dryRun: Bool = false, logger: Logger
    ) async throws -> Status {
        try await connection.query("SELECT pg_advisory_lock(\(migrationLockKey))", logger: logger)
        do {
            let status = try await migrateLocked(on: connection, migrations: migrations, upTo: target, dryRun: dryRun, logger: logger)
            try await connection.query("SELECT pg_advisory_unlock(\(migrationLockKey))", logger: logger)
            return status
        } catch {
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(migrationLockKey))", logger: logger)
            throw error
        }
    }

    static func migrateLocked(
        on connection: PostgresConnection, migrations: [Migration], upTo target: Int?, dryRun: Bool, logger: Logger
    ) async throws -> Status {
        var applied: [Int] = []
        let exists = try await connection.query("SELECT to_regclass('ipquest_migrations') IS NOT NULL", logger: logger)
        var hasTable = false
        for try await flag in exists.decode(Bool.self) { hasTable = flag }
        if hasTable {
            for try await v in try await connection.query("SELECT version FROM ipquest_migrations ORDER BY version", logger: logger).decode(Int.self) {
                applied.append(v)
            }
        }
        let pending = migrations.filter { !applied.contains($0.version) && $0.version <= (target ?? Int.max) }
        let status = Status(applied: applied, pending: pending.map(\.version))
        if dryRun { return status }
        if !hasTable { try await connection.query(PostgresQuery(unsafeSQL: createTable), logger: logger) }
        for migration in pending {
            try await connection.withTransaction(logger: logger) { tx in
                for statement in migration.sql {
                    try await tx.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await tx.query("INSERT INTO ipquest_migrations (version, name) VALUES (\(migration.version), \(migration.name))", logger: logger)
            }
            logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
        }
        return status
    }

    /// Connects once, migrates, disconnects.
    @discardableResult
    public static func migrate(settings: PostgresSettings, upTo target: Int? = nil, dryRun: Bool = false, logger: Logger) async throws -> Status {
        let connection = try await PostgresConnection.connect(configuration: try settings.connectionConfiguration(), id: 0, logger: logger)
        do {
            let status = try await migrate(on: connection, upTo: target, dryRun: dryRun, logger: logger)
            try? await connection.close()
            return status
        } catch {
            try? await connection.close()
            throw error
        }
    }
}
