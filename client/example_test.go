package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"

	"golang.org/x/oauth2"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/keyfile"
)

// A machine client calls a DPoP-protected API: the Transport gets and
// renews the token and signs a proof for every request.
func ExampleTransport() {
	key, err := keyfile.ReadFile("client.jwk")
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New(client.Config{
		Issuer:   "https://helseid-sts.test.nhn.no",
		ClientID: "8cd7c619-92db-4d55-89e2-383b75efc758",
		Key:      key,
		Scopes:   []string{"nhn:deft/api"},
		// A single-tenant client may act for one of its child
		// organisations; its parent is fixed by its registration.
		Organization: client.Organization{Child: "313231593"},
	})
	if err != nil {
		log.Fatal(err)
	}
	ts, err := c.TokenSource(client.TokenRequest{})
	if err != nil {
		log.Fatal(err)
	}
	api := &http.Client{Transport: &client.Transport{Source: ts}}
	resp, err := api.Get("https://deft.example.no/whoami")
	if err != nil {
		log.Fatal(err) // a refusal by the STS is a *client.Error inside
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))
}

// A multi-tenant (SaaS) client acts for many organisations, each of which
// has delegated to its supplier. It keeps one TokenSource, and so one
// cached token, per organisation.
func ExampleClient_TokenSource_multiTenant() {
	key, err := keyfile.ReadFile("client.jwk")
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New(client.Config{
		Issuer:   "https://helseid-sts.test.nhn.no",
		ClientID: "8cd7c619-92db-4d55-89e2-383b75efc758",
		Key:      key,
		Tenancy:  client.MultiTenant,
		Scopes:   []string{"nhn:deft/api"},
	})
	if err != nil {
		log.Fatal(err)
	}
	apis := map[string]*http.Client{}
	for _, org := range []client.Organization{
		{Parent: "313231593"},                     // NO:ORGNR:313231593:
		{Parent: "994598759", Child: "313231593"}, // NO:ORGNR:994598759:313231593
	} {
		ts, err := c.TokenSource(client.TokenRequest{Organization: org})
		if err != nil {
			log.Fatal(err)
		}
		apis[org.Parent+":"+org.Child] = &http.Client{Transport: &client.Transport{Source: ts}}
	}
	resp, err := apis["313231593:"].Get("https://deft.example.no/whoami")
	var oerr *client.Error
	if errors.As(err, &oerr) {
		log.Fatalf("the STS refused: %s (%s)", oerr.Code, oerr.Description)
	}
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
}

// Code written for golang.org/x/oauth2 takes a TokenSource through the
// adapter; for DPoP-protected APIs use Transport instead, since
// oauth2.Transport sends no proof.
func ExampleTokenSource_OAuth2() {
	key, err := keyfile.ReadFile("client.jwk")
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New(client.Config{Issuer: "https://helseid-sts.test.nhn.no", ClientID: "my-client", Key: key})
	if err != nil {
		log.Fatal(err)
	}
	ts, err := c.TokenSource(client.TokenRequest{Scopes: []string{"test:bearer/read"}, Bearer: true})
	if err != nil {
		log.Fatal(err)
	}
	var src oauth2.TokenSource = ts.OAuth2(context.Background())
	tok, err := src.Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.TokenType, tok.Expiry)
}

// Client.Token gets a token without the cache, with whatever
// assertion_details entries the request needs.
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
	tok, err := c.Token(context.Background(), client.TokenRequest{
		Scopes:       []string{"e-helse:sfm.api/sfm.api"},
		SFMJournalID: "a99abfb4-2bea-4e0a-bb03-38e37febbd2c",
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
