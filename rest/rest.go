// Package rest is the REST compatibility edge: PUT and GET /users/{id}, as the old REST
// documentation promised them to legacy callers. It decodes requests and renders responses;
// everything else is the same call into models.UserService that the GraphQL resolvers make.
package rest

import (
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"usergraph/internal/jsonbody"
	"usergraph/models"
)

// MaxBodyBytes bounds the body of a PUT.
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
	models.Unauthenticated:    http.StatusUnauthorized,
	models.Forbidden:          http.StatusUnauthorized,
	models.BadUserInput:       http.StatusBadRequest,
	models.NotFound:           http.StatusNotFound,
	models.Conflict:           http.StatusConflict,
	models.PreconditionFailed: http.StatusPreconditionFailed,
	models.Unavailable:        http.StatusServiceUnavailable,
	models.Internal:           http.StatusInternalServerError,
	CodeMethodNotAllowed:      http.StatusMethodNotAllowed,
	CodePayloadTooLarge:       http.StatusRequestEntityTooLarge,
	CodeUnsupportedMediaType:  http.StatusUnsupportedMediaType,
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

// GetUser serves GET /users/{id}: the user, with its ETag.
func GetUser(users *models.UserService, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := users.User(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		writeUser(w, u)
	})
}

// UpdateUser serves PUT /users/{id}: the same operation as the updateUser mutation. The body is
// {"username": ..., "email": ...}, either left out to keep it; If-Match makes the update
// conditional on the ETag of the user's current version.
func UpdateUser(users *models.UserService, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		upd, bad := decodeUpdate(w, r)
		if bad != nil {
			// Authentication and authorization come before any look at the body, as they do in
			// the operation: a caller who may not touch this user learns nothing from a broken one.
			if err := users.AuthorizeUpdate(r.Context(), id); err != nil {
				writeError(w, r, logger, err)
				return
			}
			writeProblem(w, bad.code, bad.detail, nil)
			return
		}
		upd.IfVersion = ifMatch(r.Header.Get("If-Match"))
		u, err := users.Update(r.Context(), id, upd)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		writeUser(w, u)
	})
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

// knownFields are the fields a PUT body may hold, in the order errors list them.
var knownFields = []string{"username", "email"}

// decodeUpdate reads a PUT body into an update. Problems with single fields (an unknown field, a
// value of the wrong type, a null) go into the update, for the operation to report with its own
// findings; a body that cannot be read as one JSON object at all is a requestError.
func decodeUpdate(w http.ResponseWriter, r *http.Request) (models.UserUpdate, *requestError) {
	var upd models.UserUpdate
	if mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mediaType != "application/json" {
		return upd, &requestError{CodeUnsupportedMediaType, "the body must be JSON, sent as Content-Type: application/json"}
	}
	// Decoding into a map, not a struct, keeps field names exact: encoding/json would match
	// "USERNAME" to a struct's Username.
	var fields map[string]json.RawMessage
	switch err := jsonbody.Decode(w, r, MaxBodyBytes, &fields); {
	case err == jsonbody.ErrTooLarge:
		return upd, &requestError{CodePayloadTooLarge, "the body is larger than " + strconv.Itoa(MaxBodyBytes) + " bytes"}
	case err == jsonbody.ErrNotUTF8, errors.Is(err, jsonbody.ErrDuplicateKey):
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
// any version of an existing user). A header that names no ETag of ours, such as a weak one, a
// list, or a malformed one, cannot match any version; the update then fails with
// PRECONDITION_FAILED once the user is known to exist.
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

func writeUser(w http.ResponseWriter, u *models.User) {
	body, _ := json.Marshal(user{ID: models.IDString(u.ID), Username: u.Username, Email: u.Email})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", etag(u.Version))
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
}

// writeError renders an operation's error.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
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
