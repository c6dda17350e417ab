package models

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"gorm.io/gorm"

	"usergraph/database"
)

// Page sizes for UserService.List.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// UserService holds the operations on users. Every edge of the service calls these, and only these,
// so that validation, authorization and errors are the same whichever way a request comes in. Each
// takes the caller from its context (see ContextWithCaller) and returns an *Error for anything a
// client should hear about; any other error is internal.
type UserService struct {
	db *gorm.DB
	// The statements of an update, prepared: see updateUserSQL. updates is indexed by the bits
	// username 1, email 2, expected version 4.
	updates [8]preparedStmt
	read    preparedStmt
}

// NewUserService returns a UserService that keeps users in db.
func NewUserService(db *gorm.DB) *UserService {
	s := &UserService{db: db, read: preparedStmt{query: selectUserSQL}}
	for i := range s.updates {
		s.updates[i].query = updateUserSQL(i&1 != 0, i&2 != 0, i&4 != 0)
	}
	return s
}

// Me returns the caller's own user.
// Codes: UNAUTHENTICATED; NOT_FOUND if it no longer exists; SERVICE_UNAVAILABLE.
func (s *UserService) Me(ctx context.Context) (*User, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	id, ok := parseID(c.UserID)
	if !ok {
		return nil, errNotFound
	}
	return s.find(ctx, id)
}

// User returns the user with this ID.
// Codes: UNAUTHENTICATED; FORBIDDEN unless it is the caller's own or the caller is an admin;
// NOT_FOUND; SERVICE_UNAVAILABLE.
func (s *UserService) User(ctx context.Context, id string) (*User, error) {
	if _, err := Authorize(ctx, id); err != nil {
		return nil, err
	}
	uid, ok := parseID(id)
	if !ok {
		return nil, errNotFound
	}
	return s.find(ctx, uid)
}

// List returns up to first users (nil means DefaultPageSize) in ID order, after the one that the
// cursor after points at (see User.Cursor), or from the start when after is nil. Paging through
// returns every user that exists throughout exactly once.
// Codes: UNAUTHENTICATED; FORBIDDEN unless the caller is an admin; BAD_USER_INPUT (first not in
// 1..MaxPageSize, or after not a cursor); SERVICE_UNAVAILABLE.
func (s *UserService) List(ctx context.Context, first *int, after *string) (*UserPage, error) {
	if _, err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	var problems []FieldError
	limit := DefaultPageSize
	if first != nil {
		limit = *first
		if limit < 1 || limit > MaxPageSize {
			problems = append(problems, FieldError{"first", "must be from 1 to 100"})
		}
	}
	var afterID int64
	if after != nil {
		var ok bool
		if afterID, ok = parseCursor(*after); !ok {
			problems = append(problems, FieldError{"after", "must be a cursor from a previous page"})
		}
	}
	if problems != nil {
		return nil, fieldsError(BadUserInput, problems)
	}
	// One more than asked tells whether another page follows.
	var users []*User
	err := s.db.WithContext(ctx).Where("id > ?", afterID).Order("id").Limit(limit + 1).Find(&users).Error
	if err != nil {
		return nil, dbError(err)
	}
	page := &UserPage{Users: users}
	if len(users) > limit {
		page.Users, page.HasNext = users[:limit], true
	}
	return page, nil
}

// Create adds a user.
// Codes: UNAUTHENTICATED; FORBIDDEN unless the caller is an admin; BAD_USER_INPUT; CONFLICT if the
// username or email is taken; SERVICE_UNAVAILABLE.
func (s *UserService) Create(ctx context.Context, in UserCreate) (*User, error) {
	if _, err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	var problems []FieldError
	if msg := validateUsername(in.Username); msg != "" {
		problems = append(problems, FieldError{"username", msg})
	}
	if msg := validateEmail(in.Email); msg != "" {
		problems = append(problems, FieldError{"email", msg})
	}
	if problems != nil {
		return nil, fieldsError(BadUserInput, problems)
	}
	u := &User{
		Username: in.Username, UsernameKey: usernameKey(in.Username),
		Email: in.Email, EmailKey: emailKey(in.Email),
		Version: 1,
	}
	for attempt := 0; ; attempt++ {
		err := s.db.WithContext(ctx).Create(u).Error
		if !errors.Is(err, gorm.ErrDuplicatedKey) {
			if err != nil {
				return nil, dbError(err)
			}
			return u, nil
		}
		if conflict := s.conflict(ctx, 0, &u.UsernameKey, &u.EmailKey, attempt); conflict != nil {
			return nil, conflict
		}
	}
}

// Update applies the changes in upd to the user with this ID and returns the user as stored after
// them. Checks come in this order, the first failing one deciding the code: UNAUTHENTICATED;
// FORBIDDEN unless it is the caller's own user or the caller is an admin; BAD_USER_INPUT (also for
// an update that changes nothing, or sets a field to null); NOT_FOUND; PRECONDITION_FAILED if
// upd.IfVersion is set and is not the user's version; CONFLICT if the new username or email
// belongs to another user. Also SERVICE_UNAVAILABLE.
//
// On the way to success it costs the database two statements: the UPDATE, which also bumps the
// version and checks IfVersion atomically, and one read of the result.
func (s *UserService) Update(ctx context.Context, id string, upd UserUpdate) (*User, error) {
	if _, err := Authorize(ctx, id); err != nil {
		return nil, err
	}
	if err := upd.Validate(); err != nil {
		return nil, err
	}
	uid, ok := parseID(id)
	if !ok {
		return nil, errNotFound
	}
	prepared, args := s.updateStatement(upd, uid)
	for attempt := 0; ; attempt++ {
		stmt, err := prepared.get(ctx, s.db.ConnPool)
		if err != nil {
			return nil, dbError(err)
		}
		res, err := stmt.ExecContext(ctx, args...)
		if err = s.translate(err); errors.Is(err, gorm.ErrDuplicatedKey) {
			// Existence and the expected version are checked before uniqueness: the UPDATE
			// matched the row, so both hold, and only the conflict remains to be named.
			if conflict := s.conflict(ctx, uid, upd.usernameKey(), upd.emailKey(), attempt); conflict != nil {
				return nil, conflict
			}
			continue
		}
		if err != nil {
			return nil, dbError(err)
		}
		u, err := s.find(ctx, uid)
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 0 && upd.IfVersion != nil && u.Version != *upd.IfVersion {
			return nil, Errorf(PreconditionFailed, "the user has changed: it is at version %d, not the one expected", u.Version)
		}
		return u, nil
	}
}

// The update's statements, written out and prepared rather than built by GORM for each call:
// they are the hot path of the service, where building them cost more than everything else it
// did for a request, and where the server's parsing them for each call cost more than executing
// them. There is one UPDATE for each combination of the fields set and of an expected version,
// each setting just what it must: a catch-all that set unchanged columns to themselves cost the
// database noticeably more. They mean the same on SQLite and MySQL.
const selectUserSQL = `SELECT id, username, email, version, created_at, updated_at FROM users WHERE id = ?`

// updateUserSQL returns the UPDATE for the fields an update sets, and with an expected version
// when it has one: the version in its WHERE clause makes the check and the write one atomic step.
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

// updateStatement returns the prepared UPDATE for upd, and its arguments.
func (s *UserService) updateStatement(upd UserUpdate, uid int64) (*preparedStmt, []any) {
	args := make([]any, 0, 7)
	i := 0
	if upd.Username != nil {
		args = append(args, *upd.Username, usernameKey(*upd.Username))
		i |= 1
	}
	if upd.Email != nil {
		args = append(args, *upd.Email, emailKey(*upd.Email))
		i |= 2
	}
	args = append(args, s.db.NowFunc(), uid)
	if upd.IfVersion != nil {
		args = append(args, *upd.IfVersion)
		i |= 4
	}
	return &s.updates[i], args
}

// preparedStmt is a statement prepared on first use and kept: the server parses and plans it
// once per connection rather than once per call. database/sql prepares it again on each
// connection that needs it, and after reconnecting.
type preparedStmt struct {
	query string
	mu    sync.Mutex
	stmt  atomic.Pointer[sql.Stmt]
}

// get returns the prepared statement, preparing it if need be. Preparing fails while the
// database is unreachable, and is tried again on the next call.
func (p *preparedStmt) get(ctx context.Context, pool gorm.ConnPool) (*sql.Stmt, error) {
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
func (s *UserService) translate(err error) error {
	if t, ok := s.db.Dialector.(gorm.ErrorTranslator); ok && err != nil {
		return t.Translate(err)
	}
	return err
}

// Delete removes the user with this ID.
// Codes: UNAUTHENTICATED; FORBIDDEN unless the caller is an admin; NOT_FOUND; SERVICE_UNAVAILABLE.
func (s *UserService) Delete(ctx context.Context, id string) error {
	if _, err := requireAdmin(ctx); err != nil {
		return err
	}
	uid, ok := parseID(id)
	if !ok {
		return errNotFound
	}
	res := s.db.WithContext(ctx).Delete(&User{}, uid)
	if res.Error != nil {
		return dbError(res.Error)
	}
	if res.RowsAffected == 0 {
		return errNotFound
	}
	return nil
}

// Validate checks the update as Update does, without touching the database. Codes:
// BAD_USER_INPUT, listing every field at fault.
func (upd UserUpdate) Validate() error {
	problems := slices.Clone(upd.Rejected)
	for _, f := range upd.Nulls {
		problems = append(problems, FieldError{f, "must not be null: leave the field out to keep its value"})
	}
	if upd.Username != nil {
		if msg := validateUsername(*upd.Username); msg != "" {
			problems = append(problems, FieldError{"username", msg})
		}
	}
	if upd.Email != nil {
		if msg := validateEmail(*upd.Email); msg != "" {
			problems = append(problems, FieldError{"email", msg})
		}
	}
	if problems != nil {
		return fieldsError(BadUserInput, problems)
	}
	if upd.Username == nil && upd.Email == nil {
		return fieldsError(BadUserInput, []FieldError{{"input", "must set at least one of username and email"}})
	}
	return nil
}

func (upd *UserUpdate) usernameKey() *string {
	if upd.Username == nil {
		return nil
	}
	k := usernameKey(*upd.Username)
	return &k
}

func (upd *UserUpdate) emailKey() *string {
	if upd.Email == nil {
		return nil
	}
	k := emailKey(*upd.Email)
	return &k
}

var errNotFound = Errorf(NotFound, "no user has this ID")

// find reads one user. Codes: NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *UserService) find(ctx context.Context, id int64) (*User, error) {
	stmt, err := s.read.get(ctx, s.db.ConnPool)
	if err != nil {
		return nil, dbError(err)
	}
	var u User
	err = stmt.QueryRowContext(ctx, id).Scan(&u.ID, &u.Username, &u.Email, &u.Version, &u.CreatedAt, &u.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, dbError(err)
	}
	return &u, nil
}

// maxConflictAttempts bounds how often a write that hit a unique index is tried again because the
// user who held the value let go of it before the conflict could be named.
const maxConflictAttempts = 3

// conflict names the fields whose keys another user than excludeID holds, after a write failed on a
// unique index. It returns nil when no other user holds them any more (they were changed or
// deleted in between), so that the caller tries the write again; after maxConflictAttempts it
// gives up with a CONFLICT that names every field written.
func (s *UserService) conflict(ctx context.Context, excludeID int64, username, email *string, attempt int) error {
	var held []User
	q := s.db.WithContext(ctx).Select("username_key", "email_key").Where("id <> ?", excludeID)
	switch {
	case username != nil && email != nil:
		q = q.Where("username_key = ? OR email_key = ?", *username, *email)
	case username != nil:
		q = q.Where("username_key = ?", *username)
	default:
		q = q.Where("email_key = ?", *email)
	}
	if err := q.Limit(2).Find(&held).Error; err != nil {
		return dbError(err)
	}
	var fields []FieldError
	for _, f := range []struct {
		name string
		key  *string
		held func(User) string
	}{
		{"username", username, func(u User) string { return u.UsernameKey }},
		{"email", email, func(u User) string { return u.EmailKey }},
	} {
		if f.key == nil {
			continue
		}
		for _, u := range held {
			if f.held(u) == *f.key {
				fields = append(fields, FieldError{f.name, "is already taken by another user"})
				break
			}
		}
	}
	if len(fields) == 0 && attempt+1 >= maxConflictAttempts {
		if username != nil {
			fields = append(fields, FieldError{"username", "is already taken by another user"})
		}
		if email != nil {
			fields = append(fields, FieldError{"email", "is already taken by another user"})
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return fieldsError(Conflict, fields)
}

// dbError turns an error from the database into the error an operation returns:
// SERVICE_UNAVAILABLE when the database could not be reached or was too busy, and otherwise the
// error itself, which is internal.
func dbError(err error) error {
	if database.IsUnavailable(err) {
		return &Error{Code: Unavailable, Message: "the database is unavailable: try again shortly", cause: err}
	}
	return err
}
