package page

// messages holds every text of the pages by key, in each language. A test
// checks that every key has every language and that every page renders.
var messages = map[string]map[Lang]string{
	"service": {
		Norwegian: "Tillit innlogging",
		English:   "Tillit login",
	},

	// Choosing an identity provider.
	"idp.title": {
		Norwegian: "Velg innloggingsmetode",
		English:   "Choose how to log in",
	},
	"idp.intro": {
		Norwegian: "Du logger inn på",
		English:   "You are logging in to",
	},
	"idp.none": {
		Norwegian: "Ingen innloggingsmetoder er tilgjengelige for denne tjenesten. Kontakt tjenesten du kom fra.",
		English:   "No way of logging in is available for this service. Contact the service you came from.",
	},
	"idp.legend": {
		Norwegian: "Innloggingsmetoder",
		English:   "Ways to log in",
	},

	// TestIDP.
	"testidp.title": {
		Norwegian: "Test-innlogging",
		English:   "Test login",
	},
	"testidp.intro": {
		Norwegian: "Dette er en testtjeneste. Oppgi hvem du vil logge inn som. Bruk aldri ekte personopplysninger.",
		English:   "This is a test service. Enter who you want to log in as. Never use real personal data.",
	},
	"testidp.errors": {
		Norwegian: "Skjemaet har feil",
		English:   "There is a problem with the form",
	},
	"testidp.pid": {
		Norwegian: "Fødselsnummer",
		English:   "National identity number",
	},
	"testidp.pid.hint": {
		Norwegian: "11 siffer. Syntetiske testnumre er tillatt.",
		English:   "11 digits. Synthetic test numbers are allowed.",
	},
	"testidp.level": {
		Norwegian: "Sikkerhetsnivå",
		English:   "Security level",
	},
	"testidp.level4": {
		Norwegian: "Nivå 4 (høyt)",
		English:   "Level 4 (high)",
	},
	"testidp.level3": {
		Norwegian: "Nivå 3 (betydelig)",
		English:   "Level 3 (substantial)",
	},
	"testidp.hpr": {
		Norwegian: "HPR-nummer (valgfritt)",
		English:   "HPR number (optional)",
	},
	"testidp.hpr.hint": {
		Norwegian: "Helsepersonellnummeret, opptil 9 siffer. La feltet stå tomt om personen ikke er helsepersonell.",
		English:   "The health personnel number, up to 9 digits. Leave it empty if the person is not health personnel.",
	},
	"testidp.submit": {
		Norwegian: "Logg inn",
		English:   "Log in",
	},
	"error.pid.required": {
		Norwegian: "Skriv inn fødselsnummeret.",
		English:   "Enter the national identity number.",
	},
	"error.pid.format": {
		Norwegian: "Fødselsnummeret må være 11 siffer.",
		English:   "The national identity number must be 11 digits.",
	},
	"error.pid.date": {
		Norwegian: "Fødselsnummeret må begynne med en gyldig dato (DDMMÅÅ).",
		English:   "The national identity number must start with a valid date (DDMMYY).",
	},
	"error.pid.checksum": {
		Norwegian: "Fødselsnummeret er ikke gyldig: kontrollsifrene stemmer ikke. Sjekk at du har skrevet det riktig.",
		English:   "The national identity number is not valid: its check digits do not match. Check that you typed it correctly.",
	},
	"error.level.invalid": {
		Norwegian: "Velg sikkerhetsnivå 3 eller 4.",
		English:   "Choose security level 3 or 4.",
	},
	"error.hpr.format": {
		Norwegian: "HPR-nummeret må være 1 til 9 siffer.",
		English:   "The HPR number must be 1 to 9 digits.",
	},

	// Logout.
	"logout.title": {
		Norwegian: "Logg ut",
		English:   "Log out",
	},
	"logout.question": {
		Norwegian: "Vil du logge ut av Tillit?",
		English:   "Do you want to log out of Tillit?",
	},
	"logout.client": {
		Norwegian: "Du kom fra",
		English:   "You came from",
	},
	"logout.submit": {
		Norwegian: "Logg ut",
		English:   "Log out",
	},

	"loggedout.title": {
		Norwegian: "Du er logget ut",
		English:   "You are logged out",
	},
	"loggedout.text": {
		Norwegian: "Du er logget ut av Tillit. Du kan lukke dette vinduet.",
		English:   "You are logged out of Tillit. You can close this window.",
	},

	// Errors.
	"error.title": {
		Norwegian: "Noe gikk galt",
		English:   "Something went wrong",
	},
	"error.what": {
		Norwegian: "Hva skjedde",
		English:   "What happened",
	},
	"error.todo": {
		Norwegian: "Hva du kan gjøre",
		English:   "What you can do",
	},
	"error.detail": {
		Norwegian: "Teknisk beskrivelse",
		English:   "Technical description",
	},
	"error.reference": {
		Norwegian: "Referanse",
		English:   "Reference",
	},
	"error.back": {
		Norwegian: "Tilbake til tjenesten",
		English:   "Back to the service",
	},
	"error.expired": {
		Norwegian: "Innloggingen er utløpt eller finnes ikke.",
		English:   "The login has expired or does not exist.",
	},
	"error.expired.todo": {
		Norwegian: "Gå tilbake til tjenesten du kom fra og start innloggingen på nytt.",
		English:   "Go back to the service you came from and start the login again.",
	},
	"error.form": {
		Norwegian: "Skjemaet kunne ikke godtas. Det kan ha vært åpent for lenge, eller det ble sendt fra et annet nettsted.",
		English:   "The form could not be accepted. It may have been open too long, or it was sent from another website.",
	},
	"error.form.todo": {
		Norwegian: "Gå tilbake til tjenesten du kom fra og start på nytt.",
		English:   "Go back to the service you came from and start again.",
	},
	"error.request": {
		Norwegian: "Tjenesten du kom fra sendte en ugyldig forespørsel.",
		English:   "The service you came from sent an invalid request.",
	},
	"error.request.todo": {
		Norwegian: "Kontakt brukerstøtten for tjenesten og oppgi den tekniske beskrivelsen nedenfor.",
		English:   "Contact the service's support and give them the technical description below.",
	},
	"error.idp": {
		Norwegian: "Innloggingen hos identitetsleverandøren ble ikke fullført.",
		English:   "The login at the identity provider was not completed.",
	},
	"error.idp.todo": {
		Norwegian: "Prøv igjen, eller velg en annen innloggingsmetode.",
		English:   "Try again, or choose another way to log in.",
	},
	"error.busy": {
		Norwegian: "Det har kommet for mange innloggingsforsøk fra din adresse.",
		English:   "There have been too many login attempts from your address.",
	},
	"error.busy.todo": {
		Norwegian: "Vent et minutt, og start innloggingen på nytt fra tjenesten du kom fra.",
		English:   "Wait a minute, then start the login again from the service you came from.",
	},
	"error.server": {
		Norwegian: "Det oppstod en feil hos oss.",
		English:   "An error occurred on our side.",
	},
	"error.server.todo": {
		Norwegian: "Prøv igjen om noen minutter. Oppgi referansen om du kontakter brukerstøtte.",
		English:   "Try again in a few minutes. Give the reference if you contact support.",
	},
}
