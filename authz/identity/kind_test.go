package identity

import "testing"

func TestKindOf(t *testing.T) {
	for name, want := range map[string]TokenKind{
		"at+jwt": KindAccess, "application/at+JWT": KindAccess, "access_token": KindAccess, "Bearer": KindAccess,
		"urn:ietf:params:oauth:token-type:access_token": KindAccess,
		"refresh_token": KindRefresh, "Refresh": KindRefresh, "Offline": KindRefresh,
		"urn:ietf:params:oauth:token-type:refresh_token": KindRefresh,
		"id_token": KindID, "ID": KindID, "urn:ietf:params:oauth:token-type:id_token": KindID,
		"logout+jwt": KindOther, "dpop+jwt": KindOther, "secevent+jwt": KindOther,
		"JWT": KindUnknown, "": KindUnknown, "at+jwt2": KindUnknown,
	} {
		if got := KindOf(name); got != want {
			t.Errorf("KindOf(%q) = %q, want %q", name, got, want)
		}
	}
}
