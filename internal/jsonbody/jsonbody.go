// Package jsonbody reads a request body that must be exactly one JSON value, for both edges of the
// service: bounded in size, UTF-8, with no object naming a key twice, and with nothing after the
// value.
package jsonbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The ways a body can fail to decode.
var (
	// ErrTooLarge: the body is longer than the limit. It was not read past the limit.
	ErrTooLarge = errors.New("the request body is too large")
	// ErrNotUTF8: the body holds bytes that are not UTF-8, which encoding/json would otherwise
	// turn into U+FFFD without a word, and which would then be stored.
	ErrNotUTF8 = errors.New("the request body is not valid UTF-8")
	// ErrNotJSON: the body is not one JSON value of the expected shape, or something follows it.
	ErrNotJSON = errors.New("the request body is not one JSON value of the expected shape")
	// ErrAborted: the client stopped sending before the body was complete.
	ErrAborted = errors.New("the request body was cut short")
	// ErrDuplicateKey: an object names the same key twice. encoding/json would keep the last
	// value without a word, while a proxy or firewall in front of the service may have judged the
	// request by the first. The error is a *DuplicateKeyError, which names the key.
	ErrDuplicateKey = errors.New("duplicate key in the request body")
)

// DuplicateKeyError is ErrDuplicateKey with the key it is about.
type DuplicateKeyError struct {
	// Key is the key, unescaped.
	Key string
	// Path locates the second occurrence of the key from the top of the body, such as
	// variables.in.username or items[2].name; a key that is not a plain name is quoted, as
	// in ["a b"].
	Path string
	// nested is whether the key is below the top level, where Path says more than Key.
	nested bool
}

// Error names the key and, below the top level, the path to it.
func (e *DuplicateKeyError) Error() string {
	msg := "duplicate key " + quoteKey(e.Key)
	if e.nested {
		msg += " at " + e.Path
	}
	return msg + " in the request body"
}

// Is makes errors.Is(err, ErrDuplicateKey) true.
func (e *DuplicateKeyError) Is(target error) bool { return target == ErrDuplicateKey }

// Decode reads r's body, of at most limit bytes, and decodes it into v, numbers as json.Number.
// Its errors are the ones above.
func Decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := Read(w, r, limit)
	if err != nil {
		return err
	}
	return Unmarshal(body, v)
}

// Read reads r's body, of at most limit bytes, and checks that it is UTF-8. Errors: ErrTooLarge,
// ErrAborted, ErrNotUTF8.
func Read(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, ErrTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, ErrTooLarge
		}
		return nil, ErrAborted
	}
	if !utf8.Valid(body) {
		return nil, ErrNotUTF8
	}
	return body, nil
}

// Unmarshal decodes exactly one JSON value from data into v, numbers as json.Number, with nothing
// but white space after it and no key twice in any of its objects. Keys are compared as
// encoding/json unescapes them, so "user\u006eame" is "username". Errors: ErrNotJSON, and
// ErrDuplicateKey as a *DuplicateKeyError.
func Unmarshal(data []byte, v any) error {
	if !plainDistinctKeys(data) {
		if err := checkKeys(data); err != nil {
			return err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return ErrNotJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrNotJSON
	}
	return nil
}

// IsArray reports whether data holds a JSON array, judging by its first character that is not
// white space.
func IsArray(data []byte) bool {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '['
}

// plainKeys bounds how many keys plainDistinctKeys compares, one against another: past it, the
// comparisons would cost more than checkKeys' map.
const plainKeys = 16

// plainDistinctKeys reports whether no two keys in data, in whichever objects, are alike: each
// plain ASCII without escapes, and all different from one another even regardless of case. Then
// no object can name a key twice, and checkKeys, which costs allocations for every token, need not
// run; a typical request body (a PUT's two fields, a mutation's query and variables) is such a
// body. It answers true only when that holds, and leaves anything else to checkKeys: keys with
// escapes or beyond ASCII, keys alike in two sibling objects, more than plainKeys keys. In JSON a
// string followed by a colon is a key; invalid JSON is for the decoder to refuse.
func plainDistinctKeys(data []byte) bool {
	var keys [plainKeys][]byte
	n := 0
	for i := 0; i < len(data); i++ {
		if data[i] != '"' {
			continue
		}
		start, plain := i+1, true
		j := start
		for j < len(data) && data[j] != '"' {
			switch c := data[j]; {
			case c == '\\':
				plain = false
				j += 2
				continue
			case c >= utf8.RuneSelf:
				plain = false
			}
			j++
		}
		if j >= len(data) {
			return false
		}
		str := data[start:j]
		i = j
		k := j + 1
		for k < len(data) && (data[k] == ' ' || data[k] == '\t' || data[k] == '\r' || data[k] == '\n') {
			k++
		}
		if k >= len(data) || data[k] != ':' {
			continue // a value, not a key
		}
		if !plain || n == plainKeys {
			return false
		}
		for _, seen := range keys[:n] {
			if bytes.EqualFold(seen, str) {
				return false
			}
		}
		keys[n] = str
		n++
	}
	return true
}

// maxDepth is encoding/json's own limit on nesting. Past it the walk gives up rather than grow its
// stacks for a document that decoding would refuse anyway.
const maxDepth = 10000

// linearKeys is how many keys of an object are searched one by one before they go into a map: a
// typical body's objects hold a handful of keys, for which a map costs more than it saves, but an
// object of a hundred thousand keys must not cost a hundred thousand comparisons a key.
const linearKeys = 16

// frame is an object or array that checkKeys is inside.
type frame struct {
	object bool
	// wantKey is whether an object's next token is a key (or its end) rather than a value.
	wantKey bool
	// start is where an object's keys begin in checkKeys' shared slice of keys.
	start int
	// seen holds an object's keys instead, once there are more than linearKeys of them.
	seen map[string]struct{}
	// fold compares the object's keys regardless of case (see foldsKeys).
	fold bool
	// key is the object's key whose value is being read, and index the array's element.
	key   string
	index int
}

// skipValue takes a scalar value from a json.Decoder without copying or converting it: checkKeys
// needs the decoder to check the value, not the value itself.
type skipValue struct{}

func (*skipValue) UnmarshalJSON([]byte) error { return nil }

// checkKeys walks the first JSON value of data and refuses an object that names a key twice. Only
// keys and brackets are read as tokens: Token would copy every other value into a Go value that
// nobody reads, so those are skipped whole, and peek, not the decoder, tells which comes next, as
// a json.Decoder cannot look ahead without reading. Errors: ErrNotJSON, *DuplicateKeyError.
func checkKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var skip skipValue
	// The keys of all open objects, innermost last, in one slice that a small body never takes
	// off the stack.
	var keyBuf [2 * linearKeys]string
	var frameBuf [8]frame
	keys, frames := keyBuf[:0], frameBuf[:0]
	for {
		c := peek(data, dec.InputOffset())
		top := len(frames) - 1
		switch {
		case c == '}' || c == ']':
			if _, err := dec.Token(); err != nil {
				return ErrNotJSON
			}
			keys = keys[:frames[top].start]
			frames = frames[:top]

		case top >= 0 && frames[top].object && frames[top].wantKey:
			tok, err := dec.Token()
			if err != nil {
				return ErrNotJSON
			}
			key, _ := tok.(string)
			f := &frames[top]
			f.key, f.wantKey = key, false
			var dup bool
			keys, dup = addKey(f, keys, key)
			if dup {
				return &DuplicateKeyError{Key: key, Path: path(frames), nested: top > 0}
			}
			continue

		case c == '{' || c == '[':
			if _, err := dec.Token(); err != nil || len(frames) == maxDepth {
				return ErrNotJSON
			}
			if top >= 0 {
				frames[top].index++
			}
			frames = append(frames, frame{object: c == '{', wantKey: true, start: len(keys), index: -1, fold: foldsKeys(frames)})
			continue

		default:
			if top >= 0 {
				frames[top].index++
			}
			if err := dec.Decode(&skip); err != nil {
				return ErrNotJSON
			}
		}
		// A value has ended.
		if len(frames) == 0 {
			return nil
		}
		frames[len(frames)-1].wantKey = true
	}
}

// foldsKeys reports whether an object opened inside frames is a request object, the whole body or
// one element of a body that is an array, whose keys are compared regardless of case: both edges
// decode those objects into Go structs, and encoding/json matches a struct's fields to keys
// regardless of case, so that {"query": "...", "QUERY": "..."} would run the second query while a
// proxy that reads "query" saw the first. Keys inside them (variables, inputs) are compared
// exactly, as GraphQL names are case-sensitive.
func foldsKeys(frames []frame) bool {
	return len(frames) == 0 || len(frames) == 1 && !frames[0].object
}

// addKey records key as one of f's keys, which are keys[f.start:] or f.seen, and reports whether
// it was there already.
func addKey(f *frame, keys []string, key string) ([]string, bool) {
	if f.seen != nil {
		if f.fold {
			key = strings.ToLower(key)
		}
		if _, dup := f.seen[key]; dup {
			return keys, true
		}
		f.seen[key] = struct{}{}
		return keys, false
	}
	same := func(k string) bool { return k == key }
	if f.fold {
		same = func(k string) bool { return strings.EqualFold(k, key) }
	}
	if slices.ContainsFunc(keys[f.start:], same) {
		return keys, true
	}
	keys = append(keys, key)
	if len(keys)-f.start > linearKeys {
		f.seen = make(map[string]struct{}, 4*linearKeys)
		for _, k := range keys[f.start:] {
			if f.fold {
				k = strings.ToLower(k)
			}
			f.seen[k] = struct{}{}
		}
		keys = keys[:f.start]
	}
	return keys, false
}

// peek returns the first byte of the next token from offset on, or 0 at the end of data. Commas
// and colons are passed over with white space: where they are missing or misplaced the decoder
// reports it, peek only tells checkKeys which call to make next.
func peek(data []byte, offset int64) byte {
	for _, c := range data[offset:] {
		switch c {
		case ' ', '\t', '\r', '\n', ',', ':':
		default:
			return c
		}
	}
	return 0
}

// path renders where the innermost of frames is, down to its current key.
func path(frames []frame) string {
	var b strings.Builder
	for i, f := range frames {
		switch {
		case !f.object:
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		case isName(f.key):
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		default:
			b.WriteString("[" + quoteKey(f.key) + "]")
		}
	}
	return b.String()
}

// isName reports whether key can stand in a path unquoted, as a GraphQL or JavaScript name.
func isName(key string) bool {
	for i, c := range key {
		if c != '_' && c != '$' && !('a' <= c && c <= 'z') && !('A' <= c && c <= 'Z') && (i == 0 || !('0' <= c && c <= '9')) {
			return false
		}
	}
	return key != ""
}

// maxQuotedKey bounds how much of a key an error message repeats: the message goes back to the
// client, and a megabyte of key should not come back twice over.
const maxQuotedKey = 64

// quoteKey quotes key for a message, cut short if it is long.
func quoteKey(key string) string {
	if len(key) <= maxQuotedKey {
		return strconv.Quote(key)
	}
	cut := maxQuotedKey
	for cut > 0 && !utf8.RuneStart(key[cut]) {
		cut--
	}
	return strconv.Quote(key[:cut]) + "…"
}
