package database

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"gorm.io/gorm"

	"usergraph/idempotency"
)

// keyRow is a row of the idempotency_keys table. Times are Unix milliseconds, which compare alike
// on every database: SQLite keeps times as text, whose order is not always theirs.
type keyRow struct {
	ID          []byte
	Fingerprint []byte
	Token       []byte
	LockedUntil int64
	ExpiresAt   int64
	// Status is 0 while the request runs, then its outcome's status.
	Status  int
	Headers []byte
	Body    []byte
}

func (keyRow) TableName() string { return "idempotency_keys" }

// KeyStore keeps the records of idempotency keys in the idempotency_keys table, beside the
// users, so that an outcome and the write it reports commit together: it is the
// idempotency.Store of the service.
//
// The statements on the way of a keyed request (the key's insert and the outcome's update) are
// written out and prepared, for the reasons updateUserSQL gives: built by GORM, they cost more CPU
// than the update they come with.
type KeyStore struct {
	db       *gorm.DB
	dialect  Dialect
	insert   preparedStmt
	complete preparedStmt
}

var _ idempotency.Store = (*KeyStore)(nil)

// NewKeyStore returns a KeyStore on db, which Open has brought up to date.
func NewKeyStore(db *gorm.DB) *KeyStore {
	return &KeyStore{
		db:       db,
		dialect:  Dialect(db.Dialector.Name()),
		insert:   preparedStmt{query: "INSERT INTO idempotency_keys (id, fingerprint, token, locked_until, expires_at, status) VALUES (?, ?, ?, ?, ?, 0)"},
		complete: preparedStmt{query: "UPDATE idempotency_keys SET status = ?, headers = ?, body = ? WHERE id = ? AND token = ?"},
	}
}

// txKey is the context key of the transaction that InTx runs its function in.
type txKey struct{}

// conn returns the database handle for a statement made with ctx: the transaction ctx carries,
// if any, so that the statement is part of it.
func conn(ctx context.Context, db *gorm.DB) *gorm.DB {
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return tx.WithContext(ctx)
	}
	return db.WithContext(ctx)
}

// inTx reports whether ctx carries a transaction.
func inTx(ctx context.Context) bool {
	_, ok := ctx.Value(txKey{}).(*gorm.DB)
	return ok
}

// InTx implements idempotency.Store.
func (s *KeyStore) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return fn(context.WithValue(ctx, txKey{}, tx))
	})
	if err != nil {
		return storeError(err)
	}
	return nil
}

// Insert implements idempotency.Store.
func (s *KeyStore) Insert(ctx context.Context, id []byte, rec idempotency.Record) (bool, error) {
	stmt, err := s.insert.prepare(ctx, s.db)
	if err != nil {
		return false, storeError(err)
	}
	_, err = stmt.ExecContext(ctx, id, rec.Fingerprint, rec.Token, rec.LockedUntil.UnixMilli(), rec.ExpiresAt.UnixMilli())
	switch {
	case errors.Is(s.translate(err), gorm.ErrDuplicatedKey):
		return false, nil
	case err != nil:
		return false, storeError(err)
	}
	return true, nil
}

// Get implements idempotency.Store.
func (s *KeyStore) Get(ctx context.Context, id []byte) (*idempotency.Record, error) {
	var rows []keyRow
	if err := conn(ctx, s.db).Where("id = ?", id).Limit(1).Find(&rows).Error; err != nil {
		return nil, storeError(err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return fromRow(rows[0])
}

// Replace implements idempotency.Store.
func (s *KeyStore) Replace(ctx context.Context, id, token []byte, rec idempotency.Record) (bool, error) {
	row := toRow(id, rec)
	res := conn(ctx, s.db).Model(&keyRow{}).Where("id = ? AND token = ?", id, token).Updates(map[string]any{
		"fingerprint":  row.Fingerprint,
		"token":        row.Token,
		"locked_until": row.LockedUntil,
		"expires_at":   row.ExpiresAt,
		"status":       0,
		"headers":      nil,
		"body":         nil,
	})
	if res.Error != nil {
		return false, storeError(res.Error)
	}
	return res.RowsAffected == 1, nil
}

// Complete implements idempotency.Store.
func (s *KeyStore) Complete(ctx context.Context, id, token []byte, resp idempotency.Response) error {
	headers, err := json.Marshal(resp.Header)
	if err != nil {
		return err
	}
	stmt, err := s.complete.prepare(ctx, s.db)
	if err != nil {
		return storeError(err)
	}
	res, err := stmt.ExecContext(ctx, resp.Status, headers, resp.Body, id, token)
	if err != nil {
		return storeError(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return idempotency.ErrLost
	}
	return nil
}

// Release implements idempotency.Store.
func (s *KeyStore) Release(ctx context.Context, id, token []byte) error {
	err := conn(ctx, s.db).Where("id = ? AND token = ? AND status = 0", id, token).Delete(&keyRow{}).Error
	if err != nil {
		return storeError(err)
	}
	return nil
}

// Purge implements idempotency.Store. Each dialect deletes a bounded batch along the index on
// expires_at: MySQL takes a LIMIT on DELETE, SQLite (as built here) does not, but takes one in a
// subquery.
func (s *KeyStore) Purge(ctx context.Context, now time.Time, limit int) (int, error) {
	res := conn(ctx, s.db).Exec(purgeSQL(s.dialect), now.UnixMilli(), limit)
	if res.Error != nil {
		return 0, storeError(res.Error)
	}
	return int(res.RowsAffected), nil
}

// purgeSQL is the statement that deletes a batch of expired keys: its arguments are the time, in
// Unix milliseconds, and the batch's size.
func purgeSQL(dialect Dialect) string {
	if dialect == SQLite {
		return "DELETE FROM idempotency_keys WHERE id IN (SELECT id FROM idempotency_keys WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)"
	}
	return "DELETE FROM idempotency_keys WHERE expires_at <= ? ORDER BY expires_at LIMIT ?"
}

func (s *KeyStore) translate(err error) error {
	if t, ok := s.db.Dialector.(gorm.ErrorTranslator); ok && err != nil {
		return t.Translate(err)
	}
	return err
}

func toRow(id []byte, rec idempotency.Record) keyRow {
	return keyRow{
		ID:          id,
		Fingerprint: rec.Fingerprint,
		Token:       rec.Token,
		LockedUntil: rec.LockedUntil.UnixMilli(),
		ExpiresAt:   rec.ExpiresAt.UnixMilli(),
	}
}

func fromRow(row keyRow) (*idempotency.Record, error) {
	rec := &idempotency.Record{
		Fingerprint: row.Fingerprint,
		Token:       row.Token,
		LockedUntil: time.UnixMilli(row.LockedUntil),
		ExpiresAt:   time.UnixMilli(row.ExpiresAt),
	}
	if row.Status != 0 {
		resp := &idempotency.Response{Status: row.Status, Body: row.Body}
		if err := json.Unmarshal(row.Headers, &resp.Header); err != nil {
			return nil, err
		}
		if resp.Header == nil {
			resp.Header = http.Header{}
		}
		rec.Response = resp
	}
	return rec, nil
}
