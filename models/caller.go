package models

import "context"

// Caller is who makes a request, as its verified bearer token says.
type Caller struct {
	// UserID is the token's sub claim: the ID of the caller's own user.
	UserID string
	// Admin is true when the token's roles include "admin".
	Admin bool
}

// owns reports whether id names the caller's own user. An ID that is not canonical ("012", "12 ")
// names no user, so it is nobody's own.
func (c *Caller) owns(id string) bool {
	_, ok := parseID(id)
	return ok && id == c.UserID
}

type authKey struct{}

// authResult is what authentication concluded about a request: a caller, or a rejected token.
type authResult struct {
	caller *Caller
	err    *Error
}

// ContextWithCaller returns a copy of ctx that carries the authenticated caller.
func ContextWithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, authKey{}, authResult{caller: c})
}

// ContextWithAuthError returns a copy of ctx that records that the request's bearer token was
// rejected, and why. Operations then return that error (code UNAUTHENTICATED) instead of treating
// the request as anonymous.
func ContextWithAuthError(ctx context.Context, message string) context.Context {
	return context.WithValue(ctx, authKey{}, authResult{err: Errorf(Unauthenticated, "%s", message)})
}

// CallerFrom returns the caller in ctx, or nil for an anonymous request or a rejected token.
func CallerFrom(ctx context.Context) *Caller {
	r, _ := ctx.Value(authKey{}).(authResult)
	return r.caller
}

// Authenticate returns the caller in ctx. Codes: UNAUTHENTICATED.
func Authenticate(ctx context.Context) (*Caller, error) {
	r, _ := ctx.Value(authKey{}).(authResult)
	switch {
	case r.err != nil:
		return nil, r.err
	case r.caller == nil:
		return nil, Errorf(Unauthenticated, "authentication required: send an Authorization: Bearer token")
	}
	return r.caller, nil
}

// authorize returns the caller in ctx if it may act on the user with this ID: its own, or any for
// an admin. Codes: UNAUTHENTICATED, FORBIDDEN. The answer never depends on whether the user exists,
// so that a refusal tells nothing about other users.
func authorize(ctx context.Context, id string) (*Caller, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	if !c.Admin && !c.owns(id) {
		return nil, Errorf(Forbidden, "you may only access your own user")
	}
	return c, nil
}

// requireAdmin returns the caller in ctx if it is an admin. Codes: UNAUTHENTICATED, FORBIDDEN.
func requireAdmin(ctx context.Context) (*Caller, error) {
	c, err := Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	if !c.Admin {
		return nil, Errorf(Forbidden, "only an admin may do this")
	}
	return c, nil
}
