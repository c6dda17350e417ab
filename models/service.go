package models

import (
	"context"
	"errors"
	"slices"

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
}

// NewUserService returns a UserService that keeps users in db.
func NewUserService(db *gorm.DB) *UserService {
	return &UserService{db: db}
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
	changes, err := upd.validate()
	if err != nil {
		return nil, err
	}
	uid, ok := parseID(id)
	if !ok {
		return nil, errNotFound
	}
	now := s.db.NowFunc()
	changes["updated_at"] = now
	changes["version"] = gorm.Expr("version + 1")
	for attempt := 0; ; attempt++ {
		q := s.db.WithContext(ctx).Model(&User{}).Where("id = ?", uid)
		if upd.IfVersion != nil {
			q = q.Where("version = ?", *upd.IfVersion)
		}
		res := q.Updates(changes)
		if errors.Is(res.Error, gorm.ErrDuplicatedKey) {
			// Existence and the expected version are checked before uniqueness: the UPDATE
			// matched the row, so both hold, and only the conflict remains to be named.
			if conflict := s.conflict(ctx, uid, upd.usernameKey(), upd.emailKey(), attempt); conflict != nil {
				return nil, conflict
			}
			continue
		}
		if res.Error != nil {
			return nil, dbError(res.Error)
		}
		u, err := s.find(ctx, uid)
		if err != nil {
			return nil, err
		}
		if res.RowsAffected == 0 && upd.IfVersion != nil && u.Version != *upd.IfVersion {
			return nil, Errorf(PreconditionFailed, "the user has changed: it is at version %d, not the one expected", u.Version)
		}
		return u, nil
	}
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
	_, err := upd.validate()
	return err
}

// validate checks the update and returns the columns it sets. Codes: BAD_USER_INPUT, listing every
// field at fault.
func (upd *UserUpdate) validate() (map[string]any, error) {
	problems := slices.Clone(upd.Rejected)
	for _, f := range upd.Nulls {
		problems = append(problems, FieldError{f, "must not be null: leave the field out to keep its value"})
	}
	changes := make(map[string]any, 6)
	if upd.Username != nil {
		if msg := validateUsername(*upd.Username); msg != "" {
			problems = append(problems, FieldError{"username", msg})
		}
		changes["username"] = *upd.Username
		changes["username_key"] = usernameKey(*upd.Username)
	}
	if upd.Email != nil {
		if msg := validateEmail(*upd.Email); msg != "" {
			problems = append(problems, FieldError{"email", msg})
		}
		changes["email"] = *upd.Email
		changes["email_key"] = emailKey(*upd.Email)
	}
	if problems != nil {
		return nil, fieldsError(BadUserInput, problems)
	}
	if len(changes) == 0 {
		return nil, fieldsError(BadUserInput, []FieldError{{"input", "must set at least one of username and email"}})
	}
	return changes, nil
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
	var u User
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
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
