package database

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"usergraph/models"
)

// UserRow is a row of the users table: a user, and the keys that the table's unique indexes
// compare, which are written with the fields they normalize and never shown.
type UserRow struct {
	models.User
	UsernameKey string
	EmailKey    string
}

// TableName names UserRow's table for GORM.
func (UserRow) TableName() string { return "users" }

// UserStore keeps users in the users table: it is the models.UserStore of the service.
type UserStore struct {
	db *gorm.DB
	// updates holds the UPDATEs of updateUserSQL, indexed by the update* bits.
	updates [updateCombinations]preparedStmt
	get     preparedStmt
}

var _ models.UserStore = (*UserStore)(nil)

// NewUserStore returns a UserStore on db, which Open has brought up to date.
func NewUserStore(db *gorm.DB) *UserStore {
	s := &UserStore{db: db, get: preparedStmt{query: selectUserSQL}}
	for i := range s.updates {
		s.updates[i].query = updateUserSQL(i&updateSetsUsername != 0, i&updateSetsEmail != 0, i&updateChecksVersion != 0)
	}
	return s
}

// selectUserSQL reads one user. It ends every update, and so is written out and prepared for the
// reasons updateUserSQL gives.
const selectUserSQL = `SELECT id, username, email, version, created_at, updated_at FROM users WHERE id = ?`

// The bits that pick an update's statement out of UserStore.updates.
const (
	updateSetsUsername = 1 << iota
	updateSetsEmail
	updateChecksVersion
	updateCombinations = 1 << iota
)

// updateUserSQL returns the UPDATE for the fields an update sets, and with an expected version
// when it has one: the version in its WHERE clause makes the check and the write one atomic step,
// and a row it does not match is never checked against the unique indexes.
//
// The UPDATEs are written out and prepared rather than built by GORM for each call: they are the
// hot path of the service, where building them cost more than everything else it did for a
// request, and where the server's parsing them for each call cost more than executing them. There
// is one for each combination of the fields set and of an expected version, each setting just what
// it must: a catch-all that set unchanged columns to themselves cost the database noticeably more.
// They mean the same on SQLite and MySQL.
func updateUserSQL(username, email, ifVersion bool) string {
	q := "UPDATE users SET "
	if username {
		q += "username = ?, username_key = ?, "
	}
	if email {
		q += "email = ?, email_key = ?, "
	}
	q += "version = version + 1, updated_at = ? WHERE id = ?"
	if ifVersion {
		q += " AND version = ?"
	}
	return q
}

// Get implements models.UserStore.
func (s *UserStore) Get(ctx context.Context, id int64) (*models.User, error) {
	stmt, err := s.get.prepare(ctx, s.db)
	if err != nil {
		return nil, storeError(err)
	}
	var u models.User
	err = stmt.QueryRowContext(ctx, id).Scan(&u.ID, &u.Username, &u.Email, &u.Version, &u.CreatedAt, &u.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, models.ErrNoSuchUser
	}
	if err != nil {
		return nil, storeError(err)
	}
	return &u, nil
}

// List implements models.UserStore.
func (s *UserStore) List(ctx context.Context, afterID int64, limit int) ([]*models.User, error) {
	var users []*models.User
	err := conn(ctx, s.db).Model(&UserRow{}).Where("id > ?", afterID).Order("id").Limit(limit).Find(&users).Error
	if err != nil {
		return nil, storeError(err)
	}
	return users, nil
}

// Insert implements models.UserStore.
func (s *UserStore) Insert(ctx context.Context, u models.User, keys models.Keys) (*models.User, error) {
	row := &UserRow{User: u, UsernameKey: *keys.Username, EmailKey: *keys.Email}
	err := retryDeadlocks(ctx, func() error {
		row.ID = 0 // a statement that was rolled back gave it no ID
		return conn(ctx, s.db).Create(row).Error
	})
	if err != nil {
		return nil, storeError(s.afterDeadlocks(ctx, err, 0, keys))
	}
	return &row.User, nil
}

// Update implements models.UserStore.
func (s *UserStore) Update(ctx context.Context, id int64, change models.UserChange) (bool, error) {
	prepared, args := s.updateStatement(id, change)
	stmt, err := prepared.prepare(ctx, s.db)
	if err != nil {
		return false, storeError(err)
	}
	var res sql.Result
	err = retryDeadlocks(ctx, func() (err error) {
		res, err = stmt.ExecContext(ctx, args...)
		return err
	})
	if err != nil {
		return false, storeError(s.afterDeadlocks(ctx, s.translate(err), id, change.Keys))
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// deadlockAttempts is how many times a write that InnoDB chose as a deadlock's victim is made in
// all. Each write is one statement outside any transaction, and the victim's statement is rolled
// back whole, so making it again is safe; and the transaction it met usually ends soon after. On
// Vitess, writers to one name meet in the unique lookup's rows, and five attempts, apart, let most
// of them through to what the data says.
const deadlockAttempts = 5

// retryDeadlocks runs write until it is not a deadlock's victim, deadlockAttempts times at most.
// A deadlock is none of the caller's doing, and the write it met decides what the data says: a
// name that write took is then a key taken, a conflict, and no internal error. Past the attempts
// the deadlock is SERVICE_UNAVAILABLE, as the database is too busy (see IsUnavailable).
//
// A write in a transaction (see KeyStore.InTx) is made once: InnoDB rolls back the whole
// transaction of a deadlock's victim, so that making the write again would make it outside the
// transaction, apart from the rest of it.
func retryDeadlocks(ctx context.Context, write func() error) error {
	attempts := deadlockAttempts
	if inTx(ctx) {
		attempts = 1
	}
	var err error
	for attempt := range attempts {
		if err = write(); !isDeadlock(err) {
			return err
		}
		// Writers that deadlocked together and tried again at once would meet again: a few
		// milliseconds apart, at random, one goes first.
		if attempt+1 < attempts {
			time.Sleep(time.Duration(1+rand.IntN(4*(attempt+1))) * time.Millisecond)
		}
	}
	return err
}

// afterDeadlocks returns err, the error of a write of keys for the user with ID id (0 for a new
// one), unless it is a deadlock that outlasted retryDeadlocks and another user holds one of keys
// now: then the write lost a race for that key, as on Vitess, whose unique lookups lock rows that
// writers to one name deadlock on, and it is gorm.ErrDuplicatedKey, for the service to name the
// conflict. A deadlock with the keys free is left as it is: the database was too busy.
func (s *UserStore) afterDeadlocks(ctx context.Context, err error, id int64, keys models.Keys) error {
	if !isDeadlock(err) || inTx(ctx) {
		return err
	}
	username, email, terr := s.Taken(ctx, id, keys)
	if terr == nil && (username || email) {
		return gorm.ErrDuplicatedKey
	}
	return err
}

// updateStatement returns the prepared UPDATE for change, and its arguments.
func (s *UserStore) updateStatement(id int64, change models.UserChange) (*preparedStmt, []any) {
	args := make([]any, 0, 7)
	i := 0
	if change.Username != nil {
		args = append(args, *change.Username, *change.Keys.Username)
		i |= updateSetsUsername
	}
	if change.Email != nil {
		args = append(args, *change.Email, *change.Keys.Email)
		i |= updateSetsEmail
	}
	args = append(args, s.db.NowFunc(), id)
	if change.IfVersion != nil {
		args = append(args, *change.IfVersion)
		i |= updateChecksVersion
	}
	return &s.updates[i], args
}

// Taken implements models.UserStore.
func (s *UserStore) Taken(ctx context.Context, excludeID int64, keys models.Keys) (username, email bool, err error) {
	q := conn(ctx, s.db).Select("username_key", "email_key").Where("id <> ?", excludeID)
	switch {
	case keys.Username != nil && keys.Email != nil:
		q = q.Where("username_key = ? OR email_key = ?", *keys.Username, *keys.Email)
	case keys.Username != nil:
		q = q.Where("username_key = ?", *keys.Username)
	case keys.Email != nil:
		q = q.Where("email_key = ?", *keys.Email)
	default:
		return false, false, nil
	}
	// Each key is unique, so that at most two users hold them.
	var holders []UserRow
	if err := q.Limit(2).Find(&holders).Error; err != nil {
		return false, false, storeError(err)
	}
	for _, h := range holders {
		username = username || keys.Username != nil && h.UsernameKey == *keys.Username
		email = email || keys.Email != nil && h.EmailKey == *keys.Email
	}
	return username, email, nil
}

// Delete implements models.UserStore.
func (s *UserStore) Delete(ctx context.Context, id int64) error {
	res := conn(ctx, s.db).Delete(&UserRow{}, id)
	if res.Error != nil {
		return storeError(res.Error)
	}
	if res.RowsAffected == 0 {
		return models.ErrNoSuchUser
	}
	return nil
}

// preparedStmt is a statement prepared on first use and kept: the server parses and plans it
// once per connection rather than once per call. database/sql prepares it again on each
// connection that needs it, and after reconnecting.
type preparedStmt struct {
	query string
	mu    sync.Mutex
	stmt  atomic.Pointer[sql.Stmt]
}

// prepare returns the prepared statement, preparing it if need be, for a call made with ctx: in
// the transaction ctx carries, if any (see KeyStore.InTx). Preparing fails while the database is
// unreachable, and is tried again on the next call.
func (p *preparedStmt) prepare(ctx context.Context, db *gorm.DB) (*sql.Stmt, error) {
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		if sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx); ok {
			// On the transaction's own connection: preparing on the pool would wait for another
			// one, and the pool may have no other (SQLite's :memory: has one).
			if st := p.stmt.Load(); st != nil {
				return sqlTx.StmtContext(ctx, st), nil
			}
			return sqlTx.PrepareContext(ctx, p.query)
		}
	}
	return p.prepared(ctx, db.ConnPool)
}

// prepared returns the statement prepared on pool, preparing it if need be.
func (p *preparedStmt) prepared(ctx context.Context, pool gorm.ConnPool) (*sql.Stmt, error) {
	if st := p.stmt.Load(); st != nil {
		return st, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.stmt.Load(); st != nil {
		return st, nil
	}
	st, err := pool.PrepareContext(ctx, p.query)
	if err != nil {
		return nil, err
	}
	p.stmt.Store(st)
	return st, nil
}

// translate gives a driver's error the meaning GORM's error translation gives it, such as
// gorm.ErrDuplicatedKey, for statements sent past GORM's builder.
func (s *UserStore) translate(err error) error {
	if t, ok := s.db.Dialector.(gorm.ErrorTranslator); ok && err != nil {
		return t.Translate(err)
	}
	return err
}

// storeError turns an error from the database into the error a models.UserStore returns:
// models.ErrKeyTaken for a write that a unique index refused; SERVICE_UNAVAILABLE when the database
// could not be reached or was too busy; and otherwise the error itself, which is internal.
func storeError(err error) error {
	switch {
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return models.ErrKeyTaken
	case IsUnavailable(err):
		return models.UnavailableError(err)
	}
	return err
}
