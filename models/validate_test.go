package models

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestValidateEmail(t *testing.T) {
	const invisible = "must not contain control, format or space characters"
	// 63 + 1 + 63 + 1 + 61: a 189-character domain, so that a key's length is easy to count.
	domain189 := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 61)
	for _, tc := range []struct {
		name string
		in   string
		want string
	}{
		{"AcceptsAccentedLocalPart", "jos\u00e9@example.com", ""},
		{"AcceptsDecomposedAccent", "jose\u0301@example.com", ""},
		{"AcceptsFullwidthLetter", "\uff4aose@example.com", ""},
		{"AcceptsChineseAddress", "用户@例子.广告", ""},
		{"AcceptsCyrillicAddress", "почта@пример.рф", ""},
		{"AcceptsSharpS", "stra\u00dfe@example.com", ""},

		{"RefusesZeroWidthSpace", "jo\u200bse@example.com", invisible},
		{"RefusesNextLine", "jose@example.com\u0085", invisible},
		{"RefusesNoBreakSpace", "jose\u00a0@example.com", invisible},
		{"RefusesRightToLeftOverride", "\u202ejose@example.com", invisible},
		{"RefusesLineSeparator", "jose@example.com\u2028", invisible},
		{"RefusesParagraphSeparator", "jose@exa\u2029mple.com", invisible},
		{"RefusesIdeographicSpace", "用户\u3000@例子.广告", invisible},
		{"RefusesByteOrderMark", "\ufeffjose@example.com", invisible},
		{"RefusesSoftHyphen", "jo\u00adse@example.com", invisible},
		{"RefusesC1Control", "jose\u009b@example.com", invisible},
		{"RefusesInnerSpace", "jo se@example.com", invisible},
		{"RefusesLeadingSpace", " jose@example.com", invisible},
		{"RefusesTrailingSpace", "jose@example.com ", invisible},
		{"RefusesTab", "jose\t@example.com", invisible},
		{"RefusesNewline", "jose@example.com\n", invisible},
		{"RefusesNUL", "jose\x00@example.com", invisible},
		{"RefusesDelete", "jose\x7f@example.com", invisible},

		// ß folds to ss: 32 of them, "@" and the domain make a key of exactly 254 characters.
		{"AcceptsKeyOf254Characters", strings.Repeat("\u00df", 32) + "@" + domain189, ""},
		{"RefusesKeyOf255Characters", strings.Repeat("\u00df", 32) + "x@" + domain189,
			"must be at most 254 characters long once normalized, where some characters such as ligatures count as several"},
		{"RefusesLigaturesThatExpandPast254", strings.Repeat("\ufb03", 60) + "@" + strings.Repeat("d", 70) + ".com", // ﬃ is ffi
			"must be at most 254 characters long once normalized, where some characters such as ligatures count as several"},

		{"KeepsDisplayNameMessageWithoutSpace", `"Jose"<jose@example.com>`, "must be a bare address such as name@example.com, without a display name"},
		{"KeepsMessageForMissingAt", "jose.example.com", "must be an email address such as name@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := validateEmail(tc.in); got != tc.want {
				t.Errorf("validateEmail(%+q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestEmailKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string
	}{
		{"LowerCasesASCII", "Jose.Smith@Example.COM", "jose.smith@example.com"},
		{"ComposesDecomposedAccent", "jose\u0301@example.com", "jos\u00e9@example.com"},
		{"KeepsComposedAccent", "jos\u00e9@example.com", "jos\u00e9@example.com"},
		{"FoldsCaseOfAccentedLetter", "JOS\u00c9@EXAMPLE.COM", "jos\u00e9@example.com"},
		{"FoldsCaseOfDecomposedAccent", "JOSE\u0301@example.com", "jos\u00e9@example.com"},
		{"KeepsAccentsApart", "jose@example.com", "jose@example.com"},
		{"MapsFullwidthLetterToASCII", "\uff4aose@example.com", "jose@example.com"},
		{"MapsFullwidthCapitalToASCII", "\uff2aOSE@example.com", "jose@example.com"},
		{"FoldsSharpSToSS", "stra\u00dfe@example.com", "strasse@example.com"},
		{"FoldsCapitalSharpSToSS", "STRA\u1e9eE@example.com", "strasse@example.com"},
		{"LowerCasesSS", "STRASSE@example.com", "strasse@example.com"},
		{"MapsKelvinSignToK", "\u212aate@example.com", "kate@example.com"},
		{"ExpandsLigature", "\ufb01ona@example.com", "fiona@example.com"},
		{"FoldsFinalSigma", "\u03bf\u03b4\u03bf\u03c2@example.com", "\u03bf\u03b4\u03bf\u03c3@example.com"},
		{"FoldsCherokeeSmallLetterToCapital", "\uab70@example.com", "\u13a0@example.com"},
		{"KeepsCherokeeCapital", "\u13a0@example.com", "\u13a0@example.com"},
		{"KeepsChinese", "用户@例子.广告", "用户@例子.广告"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := emailKey(tc.in); got != tc.want {
				t.Errorf("emailKey(%+q) = %+q, want %+q", tc.in, got, tc.want)
			}
		})
	}
}

// Properties of the key over every code point, which no list of examples covers.
func TestEmailKeyOverAllCodePoints(t *testing.T) {
	each := func(t *testing.T, check func(r rune)) {
		for r := rune(0); r <= unicode.MaxRune; r++ {
			if utf8.ValidRune(r) {
				check(r)
			}
		}
	}
	t.Run("KeyOfKeyIsItself", func(t *testing.T) {
		each(t, func(r rune) {
			key := emailKey(string(r))
			if got := emailKey(key); got != key {
				t.Errorf("%U: key %+q has key %+q", r, key, got)
			}
		})
	})
	t.Run("CaseVariantsShareAKey", func(t *testing.T) {
		each(t, func(r rune) {
			want := emailKey(string(r))
			for o := unicode.SimpleFold(r); o != r; o = unicode.SimpleFold(o) {
				if got := emailKey(string(o)); got != want {
					t.Errorf("%U has key %+q, but its case variant %U has %+q", r, want, o, got)
				}
			}
		})
	})
}
