package strictjson

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		ok        bool
	}{
		{"plain", `{"a":1,"b":{"c":[1,{"d":2}]}}`, true},
		{"same name in sibling objects", `[{"a":1},{"a":2}]`, true},
		{"nested same name as parent", `{"a":{"a":1}}`, true},
		{"duplicate", `{"a":1,"a":2}`, false},
		{"duplicate nested", `{"x":[{"a":1,"a":2}]}`, false},
		{"case variant", `{"scope":"a","Scope":"b"}`, false},
		{"case variant nested", `{"x":{"name":"a","NAME":"b"}}`, false},
		{"long s", `{"params":1,"param\u017f":2}`, false},
		{"long s raw", "{\"params\":1,\"param\u017f\":2}", false},
		{"kelvin", "{\"kid\":1,\"\u212aid\":2}", false},
		{"escaped duplicate", `{"name":1,"n\u0061me":2}`, false},
		{"invalid utf8", "{\"a\":\"\xff\"}", false},
		{"lone surrogate", `{"a":"\ud800"}`, false},
		{"trailing data", `{"a":1} {"a":2}`, false},
		{"trailing garbage", `{"a":1}x`, false},
		{"truncated", `{"a":`, false},
		{"bom", "\ufeff{}", false},
		{"values may differ only in case", `{"a":"X","b":"x"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check([]byte(tc.doc))
			if (err == nil) != tc.ok {
				t.Fatalf("Check(%s) = %v, want ok=%v", tc.doc, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrAmbiguous) {
				t.Fatalf("error %v does not wrap ErrAmbiguous", err)
			}
		})
	}
}

func TestUnmarshalExactNames(t *testing.T) {
	var v struct {
		Sub string `json:"sub"`
	}
	if err := Unmarshal([]byte(`{"SUB":"admin"}`), &v); err != nil || v.Sub != "" {
		t.Fatalf("case-insensitive match: %q %v", v.Sub, err)
	}
	if err := Unmarshal([]byte(`{"sub":"alice","SUB":"admin"}`), &v); err == nil {
		t.Fatal("case variant accepted")
	}
}

func TestFoldKeyWide(t *testing.T) {
	big := "{" + strings.Repeat(`"a`, 1) + `":1`
	for i := 0; i < 5000; i++ {
		big += `,"k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `` + itoa(i) + `":1`
	}
	big += "}"
	if err := Check([]byte(big)); err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
		if i == 0 {
			return string(b)
		}
	}
}
