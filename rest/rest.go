// Package rest is the REST compatibility edge: GET and PUT /users/{id}, as the old REST
// documentation promised them to legacy callers, and PATCH, which is PUT for clients that send
// merge patches. It decodes requests and renders responses; everything else is the same call into
// models.UserService that the GraphQL resolvers make.
package rest

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"usergraph/idempotency"
	"usergraph/internal/jsonbody"
	"usergraph/models"
	"usergraph/telemetry"
)

// MaxBodyBytes bounds the body of a PUT or PATCH.
const MaxBodyBytes = 64 << 10

// The codes of the route's own transport errors, beside the domain's: the request never reached
// the operation.
const (
	CodeMethodNotAllowed     models.Code = "METHOD_NOT_ALLOWED"
	CodePayloadTooLarge      models.Code = "PAYLOAD_TOO_LARGE"
	CodeUnsupportedMediaType models.Code = "UNSUPPORTED_MEDIA_TYPE"
)

// statusOf is the one table from codes, the domain's and the route's own, to HTTP statuses.
// FORBIDDEN is 401, not 403: the old documentation promised 401 for a caller "not authorized to
// update this user", and the body's code tells it from UNAUTHENTICATED.
var statusOf = map[models.Code]int{
	models.Unauthenticated:      http.StatusUnauthorized,
	models.Forbidden:            http.StatusUnauthorized,
	models.BadUserInput:         http.StatusBadRequest,
	models.NotFound:             http.StatusNotFound,
	models.Conflict:             http.StatusConflict,
	models.PreconditionFailed:   http.StatusPreconditionFailed,
	models.PreconditionRequired: http.StatusPreconditionRequired,
	// 422 and 409, as the Idempotency-Key draft and Stripe answer them.
	models.IdempotencyKeyMismatch: http.StatusUnprocessableEntity,
	models.IdempotencyKeyInUse:    http.StatusConflict,
	models.Unavailable:            http.StatusServiceUnavailable,
	models.Internal:               http.StatusInternalServerError,
	CodeMethodNotAllowed:          http.StatusMethodNotAllowed,
	CodePayloadTooLarge:           http.StatusRequestEntityTooLarge,
	CodeUnsupportedMediaType:      http.StatusUnsupportedMediaType,
}

// retryAfter is the Retry-After of a 503, in seconds.
const retryAfter = "5"

// user is the body of a user, exactly as the old documentation shows it.
type user struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email"`
}

// problem is an RFC 9457 problem details body, with the GraphQL code and, for input and
// conflicts, every field at fault.
type problem struct {
	Type   string              `json:"type"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Detail string              `json:"detail"`
	Code   string              `json:"code"`
	Errors []models.FieldError `json:"errors,omitempty"`
}

// GetUser serves GET /users/{id}: the user, with its ETag, or 304 Not Modified and no body when
// If-None-Match names that ETag. The condition is looked at only once the caller may read the
// user, so that a 304 tells nobody else anything about it, not even that it exists.
func GetUser(users *models.UserService, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := users.User(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		if noneMatch(r.Header.Values("If-None-Match"), etag(u.Version)) {
			writeNotModified(w, u)
			return
		}
		writeUser(w, u)
	})
}

// UpdateUser serves PUT /users/{id}: the same operation as the updateUser mutation. The body is
// {"username": ..., "email": ...}, either left out to keep it; If-Match makes the update
// conditional on the ETag of the user's current version; an Idempotency-Key makes a retry of it
// safe (see package idempotency).
func UpdateUser(users *models.UserService, keys *idempotency.Keeper, logger *slog.Logger) http.Handler {
	return update(users, keys, logger, putBody)
}

// PatchUser serves PATCH /users/{id}: the same operation as UpdateUser, whose body may also come
// as a JSON merge patch (RFC 7396). A merge patch's null removes a member, and a user has none
// that can go, so it is refused as PUT refuses null.
func PatchUser(users *models.UserService, keys *idempotency.Keeper, logger *slog.Logger) http.Handler {
	return update(users, keys, logger, patchBody)
}

// bodyFormat is what a method takes its body as.
type bodyFormat struct {
	// mediaTypes are the Content-Types taken, without parameters.
	mediaTypes []string
	// unsupported is the detail of the 415 for any other.
	unsupported string
	// patch is true for PATCH, whose 415 names the formats it takes in Accept-Patch, so that a
	// client can tell which patch document to send instead (RFC 5789).
	patch bool
}

var (
	putBody = bodyFormat{
		mediaTypes:  []string{"application/json"},
		unsupported: "the body must be JSON, sent as Content-Type: application/json",
	}
	// A merge patch whose members are all strings is the body PUT takes: application/json is
	// taken too, for clients that send PUT's body with PATCH.
	patchBody = bodyFormat{
		mediaTypes:  []string{"application/merge-patch+json", "application/json"},
		unsupported: "the body must be a JSON merge patch, sent as Content-Type: application/merge-patch+json or application/json",
		patch:       true,
	}
)

// update serves PUT and PATCH, which differ only in the media types of their bodies.
//
// A request with an Idempotency-Key runs through keys once the request is known to be the
// caller's to make and its body has been read whole: a refusal before that point (401, 413, 415,
// a malformed key) is not stored, and the same request with a fixed token or body runs. Anything
// the body or the operation answers after it is the request's outcome, stored and replayed if
// idempotency.Kept says so.
func update(users *models.UserService, keys *idempotency.Keeper, logger *slog.Logger, format bodyFormat) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		key, keyed, keyErr := idempotency.ParseKey(r.Header)
		mediaType, body, bad := readBody(w, r, format)
		if bad != nil || keyErr != nil || keyed {
			// Authentication and authorization come before any look at the body, as they do in
			// the operation: a caller who may not touch this user learns nothing from a broken one.
			if err := users.AuthorizeUpdate(r.Context(), id); err != nil {
				writeError(w, r, logger, err)
				return
			}
		}
		switch {
		case keyErr != nil:
			writeError(w, r, logger, keyErr)
			return
		case bad != nil:
			if bad.code == CodeUnsupportedMediaType && format.patch {
				w.Header().Set("Accept-Patch", strings.Join(format.mediaTypes, ", "))
			}
			writeProblem(w, bad.code, bad.detail, nil)
			return
		}
		serve := func(ctx context.Context, w http.ResponseWriter) models.Code {
			return serveUpdate(ctx, w, r, users, logger, id, body)
		}
		if !keyed || keys == nil {
			serve(r.Context(), w)
			return
		}
		req := idempotency.Request{
			Caller: models.CallerFrom(r.Context()).UserID,
			Key:    key,
			Fingerprint: idempotency.Fingerprint([]byte(r.Method), []byte(id), []byte(mediaType),
				[]byte(r.Header.Get("If-Match")), body),
		}
		if err := keys.Do(r.Context(), w, req, serve); err != nil {
			writeError(w, r, logger, err)
		}
	})
}

// serveUpdate decodes the body of an update and makes it, in ctx, and returns the code of its
// outcome.
func serveUpdate(ctx context.Context, w http.ResponseWriter, r *http.Request, users *models.UserService, logger *slog.Logger, id string, body []byte) models.Code {
	upd, bad := parseUpdate(body)
	if bad != nil {
		if err := users.AuthorizeUpdate(ctx, id); err != nil {
			writeError(w, r, logger, err)
			return models.ErrorCode(err)
		}
		writeProblem(w, bad.code, bad.detail, nil)
		return bad.code
	}
	upd.IfVersion = ifMatch(r.Header.Get("If-Match"))
	u, err := users.Update(ctx, id, upd)
	if err != nil {
		writeError(w, r, logger, err)
		return models.ErrorCode(err)
	}
	writeUser(w, u)
	return ""
}

// MethodNotAllowed answers any request with 405 and the methods that are allowed.
func MethodNotAllowed(allowed ...string) http.Handler {
	allow := strings.Join(allowed, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeProblem(w, CodeMethodNotAllowed, r.Method+" is not allowed here: use "+allow, nil)
	})
}

//go:embed openapi.yaml
var openAPIDocument []byte

// OpenAPIDocument returns the OpenAPI 3.1 document of the REST routes.
func OpenAPIDocument() []byte { return openAPIDocument }

// OpenAPI serves the OpenAPI 3.1 document of the REST routes.
func OpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(openAPIDocument)
	})
}

// requestError is a request that could not be decoded at all.
type requestError struct {
	code   models.Code
	detail string
}

// knownFields are the fields a PUT or PATCH body may hold, in the order errors list them.
var knownFields = []string{"username", "email"}

// readBody reads a PUT or PATCH body, sent in one of format's media types, and returns that
// media type and the body. A body that is not in one of them, too large or not UTF-8 is a
// requestError.
func readBody(w http.ResponseWriter, r *http.Request, format bodyFormat) (string, []byte, *requestError) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !slices.Contains(format.mediaTypes, mediaType) {
		return "", nil, &requestError{CodeUnsupportedMediaType, format.unsupported}
	}
	body, err := jsonbody.Read(w, r, MaxBodyBytes)
	switch err {
	case nil:
		return mediaType, body, nil
	case jsonbody.ErrTooLarge:
		return "", nil, &requestError{CodePayloadTooLarge, "the body is larger than " + strconv.Itoa(MaxBodyBytes) + " bytes"}
	case jsonbody.ErrNotUTF8:
		return "", nil, &requestError{models.BadUserInput, err.Error()}
	}
	return "", nil, &requestError{models.BadUserInput, "the body was cut short"}
}

// parseUpdate reads a body into an update. Problems with single fields (an unknown field, a
// value of the wrong type, a null) go into the update, for the operation to report with its own
// findings; a body that cannot be read as one JSON object at all is a requestError.
func parseUpdate(body []byte) (models.UserUpdate, *requestError) {
	var upd models.UserUpdate
	// Decoding into a map, not a struct, keeps field names exact: encoding/json would match
	// "USERNAME" to a struct's Username.
	var fields map[string]json.RawMessage
	switch err := jsonbody.Unmarshal(body, &fields); {
	case errors.Is(err, jsonbody.ErrDuplicateKey):
		return upd, &requestError{models.BadUserInput, err.Error()}
	case err != nil || fields == nil:
		return upd, &requestError{models.BadUserInput, `the body must be one JSON object, such as {"username": "...", "email": "..."}`}
	}
	for _, name := range knownFields {
		raw, ok := fields[name]
		if !ok {
			continue
		}
		if string(raw) == "null" {
			upd.Nulls = append(upd.Nulls, name)
			continue
		}
		var value string
		if err := json.Unmarshal(raw, &value); err != nil {
			upd.Rejected = append(upd.Rejected, models.FieldError{Field: name, Message: "must be a string"})
			continue
		}
		if name == "username" {
			upd.Username = &value
		} else {
			upd.Email = &value
		}
	}
	var unknown []string
	for name := range fields {
		if !slices.Contains(knownFields, name) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		upd.Rejected = append(upd.Rejected, models.FieldError{Field: name, Message: "is not a field that can be updated: send only username and email"})
	}
	return upd, nil
}

// etag is the ETag of a user's version.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch returns the version an If-Match header requires, or nil for none ("*" or no header:
// any version of an existing user). "*" names no version, so a service that requires one refuses
// it as it refuses no header: it would not keep a client from overwriting a change it has not
// seen. A header that names no ETag of ours, such as a weak one, a list, or a malformed one,
// cannot match any version; the update then fails with PRECONDITION_FAILED once the user is known
// to exist.
func ifMatch(header string) *int64 {
	header = strings.TrimSpace(header)
	if header == "" || header == "*" {
		return nil
	}
	unmatchable := int64(-1)
	inner, ok := strings.CutPrefix(header, `"`)
	if !ok {
		return &unmatchable
	}
	inner, ok = strings.CutSuffix(inner, `"`)
	if !ok {
		return &unmatchable
	}
	version, err := strconv.ParseInt(inner, 10, 64)
	if err != nil || version < 1 {
		return &unmatchable
	}
	return &version
}

// noneMatch reports whether If-None-Match, in any of its lines, names current, the ETag of the
// user's version: "*", which any existing user matches, or a list of entity tags, compared weakly
// as RFC 9110 requires for If-None-Match (W/"3" matches "3"). Reading a list stops at the first
// member that is not an entity tag, and nothing after it matches: a 200 is never wrong, a 304 for
// a misread tag would be.
func noneMatch(lines []string, current string) bool {
	for _, line := range lines {
		if strings.TrimSpace(line) == "*" {
			return true
		}
		for rest := line; ; {
			tag, after, ok := nextETag(rest)
			if !ok {
				break
			}
			if tag == current {
				return true
			}
			rest = after
		}
	}
	return false
}

// nextETag returns the opaque tag, quotes included and any W/ left off, of the first entity tag in
// the list s, and what follows it. ok is false at the end of the list and at anything that is not
// an entity tag followed by a comma or the end.
func nextETag(s string) (tag, rest string, ok bool) {
	s = strings.TrimLeft(s, " \t,")
	s, _ = strings.CutPrefix(s, "W/")
	if !strings.HasPrefix(s, `"`) {
		return "", "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", "", false
	}
	tag, rest = s[:end+2], strings.TrimLeft(s[end+2:], " \t")
	if rest != "" && rest[0] != ',' {
		return "", "", false
	}
	return tag, rest, true
}

// writeNotModified answers a GET from a client that holds the current version: with the headers
// that a 200 would describe it with, as RFC 9110 requires of a 304, and no body.
func writeNotModified(w http.ResponseWriter, u *models.User) {
	w.Header().Set("ETag", etag(u.Version))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNotModified)
}

func writeUser(w http.ResponseWriter, u *models.User) {
	body, _ := json.Marshal(user{ID: models.IDString(u.ID), Username: u.Username, Email: u.Email})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", etag(u.Version))
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
}

// writeError renders an operation's error. When the client went away, whatever the error, there
// is nobody to render it for, and no failure to log: telemetry counts the request as the client's.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	if telemetry.ClientGone(r.Context()) {
		logger.DebugContext(r.Context(), "rest: the client went away before the answer", "err", err)
		return
	}
	code := models.ErrorCode(err)
	switch code {
	case models.Unauthenticated:
		challenge := `Bearer realm="usergraph"`
		if r.Header.Get("Authorization") != "" {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	case models.Forbidden:
		w.Header().Set("WWW-Authenticate", `Bearer realm="usergraph", error="insufficient_scope"`)
	case models.Unavailable:
		logger.WarnContext(r.Context(), "rest: database unavailable", "err", err)
		w.Header().Set("Retry-After", retryAfter)
	case models.Internal:
		logger.ErrorContext(r.Context(), "rest: internal error", "err", err)
	}
	writeProblem(w, code, models.ErrorMessage(err), models.ErrorFields(err))
}

// writeProblem answers with a problem details body for code, with the status the table gives it.
func writeProblem(w http.ResponseWriter, code models.Code, detail string, fields []models.FieldError) {
	status := statusOf[code]
	body, _ := json.Marshal(problem{
		Type:   "about:blank",
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   string(code),
		Errors: fields,
	})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}
