package registry

import (
	"fmt"
	"strings"
	"testing"
)

func TestCheckAlias(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"champion", true}, {"a", true}, {"eu-canary_2", true},
		{"", false}, {"latest", false}, {"v2", false}, {"2", false}, {"Champion", false}, {"-x", false}, {"deadbeef", false},
		{strings.Repeat("x", 63), true}, {strings.Repeat("x", 64), false}, {strings.Repeat("a", 63), false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			err := CheckAlias(tc.in)
			if tc.ok {
				must(t, err)
				return
			}
			wantErr(t, err, "invalid", fmt.Sprintf("%q", tc.in))
		})
	}
}
