package models

import (
	"context"
	"errors"
)

// UserStore keeps users for a UserService, which is its only caller: the service authenticates,
// authorizes and validates before it calls, computes the keys that uniqueness compares, and decides
// what the store's answers mean to a client. The store enforces the uniqueness of the keys itself,
// atomically with each write, as a database's unique indexes do: a check followed by a write would
// let two writers take the same name.
//
// Each method is one statement on the way to success, outside any transaction, so that an
// operation's cost is the sum of the calls it makes. Besides the errors each names, any method may
// return an *Error with code SERVICE_UNAVAILABLE (see UnavailableError) when the database could
// not be reached or was too busy; any other error is internal.
type UserStore interface {
	// Get returns the user with this ID, or ErrNoSuchUser.
	Get(ctx context.Context, id int64) (*User, error)

	// List returns at most limit users whose IDs are greater than afterID, in ID order.
	List(ctx context.Context, afterID int64, limit int) ([]*User, error)

	// Insert stores a new user with its username, email and version and the keys of both (keys has
	// both set), and returns it as stored, with its ID and timestamps. ErrKeyTaken if another user
	// holds either key.
	Insert(ctx context.Context, u User, keys Keys) (*User, error)

	// Update applies change to the user with this ID in one atomic step, which also moves its
	// version up by one and its update time to now, and reports whether it applied: not if no user
	// has this ID, nor if change.IfVersion is set and the user is at another version. ErrKeyTaken if
	// another user holds a key written, and only then: existence and the expected version are
	// checked before uniqueness. The user is left as it was whenever the change did not apply.
	Update(ctx context.Context, id int64, change UserChange) (applied bool, err error)

	// Taken reports which of keys users other than the one with ID excludeID hold. A nil key is
	// not asked about.
	Taken(ctx context.Context, excludeID int64, keys Keys) (username, email bool, err error)

	// Delete removes the user with this ID, or returns ErrNoSuchUser.
	Delete(ctx context.Context, id int64) error
}

// Errors a UserStore returns, which UserService turns into the codes clients see.
var (
	// ErrNoSuchUser: no user has the ID.
	ErrNoSuchUser = errors.New("no such user")
	// ErrKeyTaken: another user holds a key that a write would have given this one.
	ErrKeyTaken = errors.New("key taken by another user")
)

// Keys are the forms of a username and an email that uniqueness compares, byte for byte: see
// usernameKey and emailKey. The domain computes them and hands them to the store, so that what
// counts as the same name is its rule, alike on every database, and not a database's collation.
// A nil key belongs to a field that a write leaves alone or that a lookup does not ask about.
type Keys struct {
	Username *string
	Email    *string
}

// UserChange is an update as a UserStore applies it.
type UserChange struct {
	// Username and Email are the values to store, nil for a field left as it is; Keys holds the
	// key of each one set.
	Username *string
	Email    *string
	Keys     Keys

	// IfVersion, when set, is the version the user must be at for the change to apply.
	IfVersion *int64
}
