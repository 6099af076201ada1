package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/keyfile"
)

// A multi-tenant client gets a DPoP-bound token for DEFT on behalf of one
// of the organisations that have delegated to its supplier.
func ExampleClient_Token() {
	key, err := keyfile.ReadFile("client.jwk")
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New(client.Config{
		Issuer:   "https://helseid-sts.test.nhn.no",
		ClientID: "8cd7c619-92db-4d55-89e2-383b75efc758",
		Key:      key,
	})
	if err != nil {
		log.Fatal(err)
	}
	org, err := helseid.NewMultiTenantOrganization("313231593", "")
	if err != nil {
		log.Fatal(err)
	}
	tok, err := c.Token(context.Background(), client.TokenRequest{
		Scopes:           []string{"nhn:deft/api"},
		AssertionDetails: []helseid.Detail{org},
	})
	var oerr *client.Error
	if errors.As(err, &oerr) {
		log.Fatalf("refused: %s (%s)", oerr.Code, oerr.Description)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.TokenType, tok.Expiry)
}
