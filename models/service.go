package models

import (
	"context"
	"errors"
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
	store UserStore
	// versionRequired makes Update refuse an update that does not name the version it applies to.
	versionRequired bool
}

// Option configures a UserService.
type Option func(*UserService)

// RequireIfVersion makes Update refuse, when required is true, an update whose IfVersion is nil,
// with PRECONDITION_REQUIRED: then no client can overwrite a change it has not seen, because none
// can write without saying which version it read. Off, an update without IfVersion applies to
// whatever version is stored.
func RequireIfVersion(required bool) Option {
	return func(s *UserService) { s.versionRequired = required }
}

// NewUserService returns a UserService that keeps users in store, configured by opts.
func NewUserService(store UserStore, opts ...Option) *UserService {
	s := &UserService{store: store}
	for _, opt := range opts {
		opt(s)
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
	if _, err := authorize(ctx, id); err != nil {
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
	limit, afterID, err := validatePage(first, after)
	if err != nil {
		return nil, err
	}
	// One more than asked tells whether another page follows.
	users, err := s.store.List(ctx, afterID, limit+1)
	if err != nil {
		return nil, err
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
	if err := in.validate(); err != nil {
		return nil, err
	}
	keys := keysOf(&in.Username, &in.Email)
	for attempt := 0; ; attempt++ {
		u, err := s.store.Insert(ctx, User{Username: in.Username, Email: in.Email, Version: 1}, keys)
		if errors.Is(err, ErrKeyTaken) {
			if conflict := s.conflict(ctx, 0, keys, attempt); conflict != nil {
				return nil, conflict
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		return u, nil
	}
}

// AuthorizeUpdate makes the checks that Update makes before it looks at the update. An edge that
// cannot read an update out of a request makes them before it says why, as Update would, so that a
// caller who may not touch this user learns nothing from a broken request.
// Codes: UNAUTHENTICATED; FORBIDDEN unless it is the caller's own user or the caller is an admin.
func (s *UserService) AuthorizeUpdate(ctx context.Context, id string) error {
	_, err := authorize(ctx, id)
	return err
}

// Update applies the changes in upd to the user with this ID and returns the user as stored after
// them. Checks come in this order, the first failing one deciding the code: UNAUTHENTICATED;
// FORBIDDEN unless it is the caller's own user or the caller is an admin; BAD_USER_INPUT (also for
// an update that changes nothing, or sets a field to null); PRECONDITION_REQUIRED if the service
// requires a version (RequireIfVersion) and upd.IfVersion is nil, before existence because it is
// a property of the request, whichever user it names; NOT_FOUND; PRECONDITION_FAILED if
// upd.IfVersion is set and is not the user's version; CONFLICT if the new username or email
// belongs to another user. Also SERVICE_UNAVAILABLE.
//
// On the way to success it costs the store two calls, each one statement: the update, which also
// bumps the version and checks IfVersion atomically, and one read of the result.
func (s *UserService) Update(ctx context.Context, id string, upd UserUpdate) (*User, error) {
	if err := s.AuthorizeUpdate(ctx, id); err != nil {
		return nil, err
	}
	if err := upd.Validate(); err != nil {
		return nil, err
	}
	if s.versionRequired && upd.IfVersion == nil {
		return nil, errVersionRequired
	}
	uid, ok := parseID(id)
	if !ok {
		return nil, errNotFound
	}
	change := UserChange{
		Username:  upd.Username,
		Email:     upd.Email,
		Keys:      keysOf(upd.Username, upd.Email),
		IfVersion: upd.IfVersion,
	}
	for attempt := 0; ; attempt++ {
		applied, err := s.store.Update(ctx, uid, change)
		if errors.Is(err, ErrKeyTaken) {
			// The store checks existence and the expected version before uniqueness: a key taken
			// means that both hold, and only the conflict remains to be named.
			if conflict := s.conflict(ctx, uid, change.Keys, attempt); conflict != nil {
				return nil, conflict
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		u, err := s.find(ctx, uid)
		if err != nil {
			return nil, err
		}
		if !applied && upd.IfVersion != nil && u.Version != *upd.IfVersion {
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
	err := s.store.Delete(ctx, uid)
	if errors.Is(err, ErrNoSuchUser) {
		return errNotFound
	}
	return err
}

var errNotFound = Errorf(NotFound, "no user has this ID")

var errVersionRequired = Errorf(PreconditionRequired,
	"an update must name the version it applies to: send If-Match with the ETag you read (REST) or expectedVersion (GraphQL)")

// find reads one user. Codes: NOT_FOUND, SERVICE_UNAVAILABLE.
func (s *UserService) find(ctx context.Context, id int64) (*User, error) {
	u, err := s.store.Get(ctx, id)
	if errors.Is(err, ErrNoSuchUser) {
		return nil, errNotFound
	}
	return u, err
}

// maxConflictAttempts bounds how often a write that found a key taken is tried again because the
// user who held the key let go of it before the conflict could be named.
const maxConflictAttempts = 3

// conflict names the fields whose keys another user than excludeID holds, after a write found a key
// taken. It returns nil when no other user holds them any more (they were changed or
// deleted in between), so that the caller tries the write again; after maxConflictAttempts it
// gives up with a CONFLICT that names every field written.
func (s *UserService) conflict(ctx context.Context, excludeID int64, keys Keys, attempt int) error {
	usernameTaken, emailTaken, err := s.store.Taken(ctx, excludeID, keys)
	if err != nil {
		return err
	}
	if !usernameTaken && !emailTaken {
		if attempt+1 < maxConflictAttempts {
			return nil
		}
		usernameTaken, emailTaken = keys.Username != nil, keys.Email != nil
	}
	var fields []FieldError
	if usernameTaken {
		fields = append(fields, FieldError{"username", "is already taken by another user"})
	}
	if emailTaken {
		fields = append(fields, FieldError{"email", "is already taken by another user"})
	}
	return fieldsError(Conflict, fields)
}
