//! The conferencing attendant's spoken prompts: text per language, spoken by Debian's
//! `espeak-ng`, cached as WAV in a directory (the server's data directory) and in memory.
//!
//! - **Languages**: en-US, fr-FR, de-DE and es-ES have their own text (fr-CA speaks the
//!   French text with the French voice, es-MX the Spanish text with the Latin American
//!   voice, en-GB and en-AU the English text with the British voice). The other Lync
//!   languages (it-IT nl-NL pt-BR pt-PT sv-SE da-DK nb-NO fi-FI pl-PL ru-RU ja-JP zh-CN
//!   ko-KR) have no translation yet: their prompts are the English text spoken by the
//!   English voice (an English sentence read by, say, the Polish voice would not be
//!   understood), and names ([`Prompts::speak`]) are spoken by the language's own voice.
//!   Anything else is en-US.
//! - **Speech**: `espeak-ng -v <voice> -s 160 -w <tmp.wav> -- <text>` (no shell; the text
//!   is one argument after `--`, stdin closed, killed after 30 s), read, resampled to
//!   16 kHz, trimmed of leading and trailing silence, and normalised to about -16 dBFS RMS
//!   with peaks held at -2 dBFS by a smooth limiter. The program is `espeak-ng` on PATH, or `CONFAB_ESPEAK`.
//! - **Cache**: `<dir>/<lang>/<prompt-name>.wav` (e.g. `en-US/enter-conference-id.wav`) and
//!   `<dir>/<lang>/names/<key>.wav`, 16 kHz 16-bit mono; each file carries the hash of its
//!   voice and text in its `ICMT` comment and is remade when they change; files are written
//!   to a temporary name and renamed, so two threads or processes making the same prompt at
//!   once are safe. In memory: every prompt used, and the last 256 names; on disk at most
//!   1024 names per language (the oldest are removed).
//! - **Without espeak-ng** (missing, or failing): a warning is logged once, `can_speak()` is
//!   false, and a prompt not already in the cache is a short two-tone chime (660 Hz then
//!   880 Hz), never silence.
//! - **Names** come from SIP display names: control characters and brackets become spaces,
//!   runs of spaces one, leading dashes and spaces are dropped and the rest is cut to 64
//!   characters; a name with nothing left is the chime.

use crate::clip::Clip;
use crate::codec::MIX_RATE;
use crate::wav;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Everything the attendant and the keypad say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prompt {
    /// "Welcome to the conferencing service."
    Welcome,
    /// "Please enter the conference ID, followed by the pound key."
    EnterConferenceId,
    /// "That conference ID was not recognised. Please try again."
    InvalidConferenceId,
    /// "If you are the leader, press star. Otherwise, please wait."
    LeaderQuestion,
    /// "Please enter your extension or phone number, followed by pound."
    EnterNumber,
    /// "Please enter your PIN, followed by pound."
    EnterPin,
    /// "That extension or PIN was not recognised. Please try again."
    InvalidPin,
    /// "Your PIN is locked. Please contact your administrator."
    PinLocked,
    /// "After the tone, please say your name, then press pound."
    RecordName,
    /// "You are now joining the meeting."
    Joining,
    /// "Please wait. Someone in the meeting will let you in shortly."
    Lobby,
    /// "This meeting is locked. Please wait for a leader to let you in."
    MeetingLockedWait,
    /// "Sorry, you could not join the meeting." (denied, full, not allowed)
    NotAdmitted,
    /// "Too many attempts. Goodbye."
    Goodbye,
    /// The keypad help: "Press star six to mute or unmute yourself. ..." (leaders hear more:
    /// `HelpLeader`).
    Help,
    HelpLeader,
    /// "You are muted." / "You are unmuted."
    Muted,
    Unmuted,
    /// "The audience is muted." / "The audience is unmuted."
    AudienceMuted,
    AudienceUnmuted,
    /// "The meeting is locked." / "The meeting is unlocked."
    Locked,
    Unlocked,
    /// "Everyone in the lobby has been admitted."
    LobbyAdmitted,
    /// "Entry and exit announcements are on." / "... off."
    AnnouncementsOn,
    AnnouncementsOff,
    /// "The participants are:" (the private roll call, followed by names)
    RollCall,
    /// "has joined the meeting." / "has left the meeting." (after a name)
    HasJoined,
    HasLeft,
    /// "That command is not available."
    NotAvailable,
    /// "Dial-in conferencing is not available for this meeting."
    DialInDisabled,
}

impl Prompt {
    pub const ALL: &'static [Prompt] = &[
        Prompt::Welcome,
        Prompt::EnterConferenceId,
        Prompt::InvalidConferenceId,
        Prompt::LeaderQuestion,
        Prompt::EnterNumber,
        Prompt::EnterPin,
        Prompt::InvalidPin,
        Prompt::PinLocked,
        Prompt::RecordName,
        Prompt::Joining,
        Prompt::Lobby,
        Prompt::MeetingLockedWait,
        Prompt::NotAdmitted,
        Prompt::Goodbye,
        Prompt::Help,
        Prompt::HelpLeader,
        Prompt::Muted,
        Prompt::Unmuted,
        Prompt::AudienceMuted,
        Prompt::AudienceUnmuted,
        Prompt::Locked,
        Prompt::Unlocked,
        Prompt::LobbyAdmitted,
        Prompt::AnnouncementsOn,
        Prompt::AnnouncementsOff,
        Prompt::RollCall,
        Prompt::HasJoined,
        Prompt::HasLeft,
        Prompt::NotAvailable,
        Prompt::DialInDisabled,
    ];
}

impl Prompt {
    /// The prompt's file name in the cache, without `.wav`: `EnterConferenceId` is
    /// `enter-conference-id`.
    pub fn file_name(self) -> String {
        let mut out = String::new();
        for (i, c) in format!("{self:?}").chars().enumerate() {
            if c.is_ascii_uppercase() {
                if i > 0 {
                    out.push('-');
                }
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// The prompt's English text.
    pub fn english(self) -> &'static str {
        text(Texts::En, self)
    }
}

/// Which translation a language's prompts use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Texts {
    En,
    Fr,
    De,
    Es,
}

/// A Lync language: its code (the cache directory's name), the espeak-ng voice for names,
/// and the text and voice of its prompts.
struct Lang {
    code: &'static str,
    voice: &'static str,
    texts: Texts,
    prompt_voice: &'static str,
}

const fn lang(code: &'static str, voice: &'static str, texts: Texts, pv: &'static str) -> Lang {
    Lang {
        code,
        voice,
        texts,
        prompt_voice: pv,
    }
}

/// Lync 2013's conferencing languages. The first is the fallback.
static LANGS: &[Lang] = &[
    lang("en-US", "en-us", Texts::En, "en-us"),
    lang("en-GB", "en-gb", Texts::En, "en-gb"),
    lang("en-AU", "en-gb", Texts::En, "en-gb"),
    lang("fr-FR", "fr-fr", Texts::Fr, "fr-fr"),
    lang("fr-CA", "fr-fr", Texts::Fr, "fr-fr"),
    lang("de-DE", "de", Texts::De, "de"),
    lang("es-ES", "es", Texts::Es, "es"),
    lang("es-MX", "es-419", Texts::Es, "es-419"),
    lang("it-IT", "it", Texts::En, "en-us"),
    lang("nl-NL", "nl", Texts::En, "en-us"),
    lang("pt-BR", "pt-br", Texts::En, "en-us"),
    lang("pt-PT", "pt", Texts::En, "en-us"),
    lang("sv-SE", "sv", Texts::En, "en-us"),
    lang("da-DK", "da", Texts::En, "en-us"),
    lang("nb-NO", "nb", Texts::En, "en-us"),
    lang("fi-FI", "fi", Texts::En, "en-us"),
    lang("pl-PL", "pl", Texts::En, "en-us"),
    lang("ru-RU", "ru", Texts::En, "en-us"),
    lang("ja-JP", "ja", Texts::En, "en-us"),
    lang("zh-CN", "cmn", Texts::En, "en-us"),
    lang("ko-KR", "ko", Texts::En, "en-us"),
];

/// The language for a Lync language tag (case-insensitive; a bare "fr" is the first "fr-…");
/// anything else is en-US.
fn lang_of(tag: &str) -> &'static Lang {
    let tag = tag.trim();
    LANGS
        .iter()
        .find(|l| l.code.eq_ignore_ascii_case(tag))
        .or_else(|| {
            (tag.len() == 2)
                .then(|| LANGS.iter().find(|l| l.code[..2].eq_ignore_ascii_case(tag)))
                .flatten()
        })
        .unwrap_or(&LANGS[0])
}

/// The Lync languages that have prompts (every tag [`Prompts::prompt`] knows by name).
pub fn languages() -> impl Iterator<Item = &'static str> {
    LANGS.iter().map(|l| l.code)
}

fn text(t: Texts, p: Prompt) -> &'static str {
    use Prompt::*;
    match t {
        Texts::En => match p {
            Welcome => "Welcome to the conferencing service.",
            EnterConferenceId => "Please enter the conference ID, followed by the pound key.",
            InvalidConferenceId => "That conference ID was not recognized. Please try again.",
            LeaderQuestion => "If you are the leader, press star. Otherwise, please wait.",
            EnterNumber => {
                "Please enter your extension or phone number, followed by the pound key."
            }
            EnterPin => "Please enter your PIN, followed by the pound key.",
            InvalidPin => "That extension or PIN was not recognized. Please try again.",
            PinLocked => "Your PIN is locked. Please contact your administrator.",
            RecordName => "After the tone, please say your name, then press the pound key.",
            Joining => "You are now joining the meeting.",
            Lobby => "Please wait. Someone in the meeting will let you in shortly.",
            MeetingLockedWait => "This meeting is locked. Please wait for a leader to let you in.",
            NotAdmitted => "Sorry, you could not join the meeting.",
            Goodbye => "Too many attempts. Goodbye.",
            Help => "Press star six to mute or unmute yourself. Press star one to hear this again.",
            HelpLeader => {
                "Press star six to mute or unmute yourself, star three to hear who is here, \
                 star four to mute or unmute the audience, star seven to lock or unlock the \
                 meeting, star eight to admit everyone in the lobby, and star nine to turn \
                 announcements on or off. Star one repeats this help."
            }
            Muted => "You are muted.",
            Unmuted => "You are unmuted.",
            AudienceMuted => "The audience is muted.",
            AudienceUnmuted => "The audience is unmuted.",
            Locked => "The meeting is locked.",
            Unlocked => "The meeting is unlocked.",
            LobbyAdmitted => "Everyone in the lobby has been admitted.",
            AnnouncementsOn => "Entry and exit announcements are on.",
            AnnouncementsOff => "Entry and exit announcements are off.",
            RollCall => "The participants are:",
            HasJoined => "has joined the meeting.",
            HasLeft => "has left the meeting.",
            NotAvailable => "That command is not available.",
            DialInDisabled => "Dial-in conferencing is not available for this meeting.",
        },
        Texts::Fr => match p {
            Welcome => "Bienvenue sur le service de conférence.",
            EnterConferenceId => {
                "Veuillez saisir le numéro de la conférence, suivi de la touche dièse."
            }
            InvalidConferenceId => {
                "Ce numéro de conférence n'a pas été reconnu. Veuillez réessayer."
            }
            LeaderQuestion => {
                "Si vous êtes l'organisateur, appuyez sur étoile. Sinon, veuillez patienter."
            }
            EnterNumber => {
                "Veuillez saisir votre numéro de poste ou de téléphone, suivi de la touche dièse."
            }
            EnterPin => "Veuillez saisir votre code confidentiel, suivi de la touche dièse.",
            InvalidPin => {
                "Ce numéro ou ce code confidentiel n'a pas été reconnu. Veuillez réessayer."
            }
            PinLocked => {
                "Votre code confidentiel est verrouillé. Veuillez contacter votre administrateur."
            }
            RecordName => "Après le bip, dites votre nom, puis appuyez sur la touche dièse.",
            Joining => "Vous rejoignez maintenant la réunion.",
            Lobby => "Veuillez patienter. Quelqu'un dans la réunion va vous faire entrer.",
            MeetingLockedWait => {
                "Cette réunion est verrouillée. Veuillez attendre qu'un organisateur vous fasse entrer."
            }
            NotAdmitted => "Désolé, vous n'avez pas pu rejoindre la réunion.",
            Goodbye => "Trop de tentatives. Au revoir.",
            Help => {
                "Appuyez sur étoile six pour couper ou rétablir votre micro. \
                 Étoile un répète cette aide."
            }
            HelpLeader => {
                "Appuyez sur étoile six pour couper ou rétablir votre micro, étoile trois pour \
                 savoir qui est là, étoile quatre pour couper ou rétablir le public, étoile sept \
                 pour verrouiller ou déverrouiller la réunion, étoile huit pour admettre la salle \
                 d'attente, et étoile neuf pour les annonces. Étoile un répète cette aide."
            }
            Muted => "Votre micro est coupé.",
            Unmuted => "Votre micro est rétabli.",
            AudienceMuted => "Le public est en sourdine.",
            AudienceUnmuted => "Le public n'est plus en sourdine.",
            Locked => "La réunion est verrouillée.",
            Unlocked => "La réunion est déverrouillée.",
            LobbyAdmitted => "Toutes les personnes de la salle d'attente ont été admises.",
            AnnouncementsOn => "Les annonces d'arrivée et de départ sont activées.",
            AnnouncementsOff => "Les annonces d'arrivée et de départ sont désactivées.",
            RollCall => "Les participants sont :",
            HasJoined => "a rejoint la réunion.",
            HasLeft => "a quitté la réunion.",
            NotAvailable => "Cette commande n'est pas disponible.",
            DialInDisabled => "L'accès par téléphone n'est pas disponible pour cette réunion.",
        },
        Texts::De => match p {
            Welcome => "Willkommen beim Konferenzdienst.",
            EnterConferenceId => {
                "Bitte geben Sie die Konferenz-ID ein, gefolgt von der Rautetaste."
            }
            InvalidConferenceId => {
                "Diese Konferenz-ID wurde nicht erkannt. Bitte versuchen Sie es erneut."
            }
            LeaderQuestion => {
                "Wenn Sie der Leiter sind, drücken Sie die Sterntaste. Andernfalls warten Sie bitte."
            }
            EnterNumber => {
                "Bitte geben Sie Ihre Durchwahl oder Telefonnummer ein, gefolgt von der Rautetaste."
            }
            EnterPin => "Bitte geben Sie Ihre PIN ein, gefolgt von der Rautetaste.",
            InvalidPin => {
                "Diese Durchwahl oder PIN wurde nicht erkannt. Bitte versuchen Sie es erneut."
            }
            PinLocked => "Ihre PIN ist gesperrt. Bitte wenden Sie sich an Ihren Administrator.",
            RecordName => {
                "Bitte sagen Sie nach dem Signalton Ihren Namen und drücken Sie dann die Rautetaste."
            }
            Joining => "Sie nehmen jetzt an der Besprechung teil.",
            Lobby => "Bitte warten Sie. Jemand in der Besprechung wird Sie gleich hereinlassen.",
            MeetingLockedWait => {
                "Diese Besprechung ist gesperrt. Bitte warten Sie, bis ein Leiter Sie hereinlässt."
            }
            NotAdmitted => "Sie konnten der Besprechung leider nicht beitreten.",
            Goodbye => "Zu viele Versuche. Auf Wiederhören.",
            Help => {
                "Drücken Sie Stern sechs, um sich stumm oder wieder laut zu schalten. \
                 Stern eins wiederholt diese Hilfe."
            }
            HelpLeader => {
                "Stern sechs schaltet Sie stumm oder laut, Stern drei nennt die Teilnehmer, \
                 Stern vier schaltet das Publikum stumm oder laut, Stern sieben sperrt oder \
                 entsperrt die Besprechung, Stern acht lässt alle Wartenden herein, und Stern \
                 neun schaltet die Ansagen ein oder aus. Stern eins wiederholt diese Hilfe."
            }
            Muted => "Sie sind stummgeschaltet.",
            Unmuted => "Sie sind nicht mehr stummgeschaltet.",
            AudienceMuted => "Das Publikum ist stummgeschaltet.",
            AudienceUnmuted => "Das Publikum ist nicht mehr stummgeschaltet.",
            Locked => "Die Besprechung ist gesperrt.",
            Unlocked => "Die Besprechung ist entsperrt.",
            LobbyAdmitted => "Alle Wartenden wurden hereingelassen.",
            AnnouncementsOn => "Die Ansagen beim Kommen und Gehen sind eingeschaltet.",
            AnnouncementsOff => "Die Ansagen beim Kommen und Gehen sind ausgeschaltet.",
            RollCall => "Die Teilnehmer sind:",
            HasJoined => "ist der Besprechung beigetreten.",
            HasLeft => "hat die Besprechung verlassen.",
            NotAvailable => "Dieser Befehl ist nicht verfügbar.",
            DialInDisabled => {
                "Die Einwahl per Telefon ist für diese Besprechung nicht verfügbar."
            }
        },
        Texts::Es => match p {
            Welcome => "Bienvenido al servicio de conferencias.",
            EnterConferenceId => {
                "Introduzca el número de la conferencia, seguido de la tecla almohadilla."
            }
            InvalidConferenceId => {
                "No se ha reconocido ese número de conferencia. Inténtelo de nuevo."
            }
            LeaderQuestion => "Si es el organizador, pulse asterisco. Si no, espere, por favor.",
            EnterNumber => {
                "Introduzca su extensión o número de teléfono, seguido de la tecla almohadilla."
            }
            EnterPin => "Introduzca su PIN, seguido de la tecla almohadilla.",
            InvalidPin => "No se ha reconocido esa extensión o PIN. Inténtelo de nuevo.",
            PinLocked => "Su PIN está bloqueado. Póngase en contacto con su administrador.",
            RecordName => "Después del tono, diga su nombre y pulse la tecla almohadilla.",
            Joining => "Está entrando en la reunión.",
            Lobby => "Espere, por favor. Alguien de la reunión le dejará entrar en breve.",
            MeetingLockedWait => {
                "Esta reunión está bloqueada. Espere a que un organizador le deje entrar."
            }
            NotAdmitted => "Lo sentimos, no ha podido entrar en la reunión.",
            Goodbye => "Demasiados intentos. Adiós.",
            Help => {
                "Pulse asterisco seis para silenciar o activar su micrófono. \
                 Asterisco uno repite esta ayuda."
            }
            HelpLeader => {
                "Asterisco seis silencia o activa su micrófono, asterisco tres dice quién está, \
                 asterisco cuatro silencia o activa al público, asterisco siete bloquea o \
                 desbloquea la reunión, asterisco ocho admite la sala de espera, y asterisco \
                 nueve activa o desactiva los anuncios. Asterisco uno repite esta ayuda."
            }
            Muted => "Su micrófono está silenciado.",
            Unmuted => "Su micrófono está activado.",
            AudienceMuted => "El público está silenciado.",
            AudienceUnmuted => "El público ya no está silenciado.",
            Locked => "La reunión está bloqueada.",
            Unlocked => "La reunión está desbloqueada.",
            LobbyAdmitted => "Se ha admitido a todas las personas de la sala de espera.",
            AnnouncementsOn => "Los anuncios de entrada y salida están activados.",
            AnnouncementsOff => "Los anuncios de entrada y salida están desactivados.",
            RollCall => "Los participantes son:",
            HasJoined => "ha entrado en la reunión.",
            HasLeft => "ha salido de la reunión.",
            NotAvailable => "Ese comando no está disponible.",
            DialInDisabled => {
                "La conferencia por teléfono no está disponible para esta reunión."
            }
        },
    }
}

/// Names kept in memory.
const NAME_CACHE: usize = 256;
/// Name files kept on disk per language.
const NAME_FILES: usize = 1024;
/// The longest name spoken, in characters.
const NAME_CHARS: usize = 64;
/// How long espeak-ng may take for one text.
const ESPEAK_TIMEOUT: Duration = Duration::from_secs(30);
/// Bumped when the processing (rate, level, trimming) changes, so caches are remade.
const PROCESSING: &str = "v1 160wpm trim -16dBFS";

/// The prompt store. `Send + Sync`; the first use of a prompt may run `espeak-ng` (blocking):
/// call [`Prompts::prepare`] on a blocking thread at start.
pub struct Prompts {
    dir: PathBuf,
    espeak: OsString,
    /// Whether `espeak-ng --version` ran (probed on first need).
    found: OnceLock<bool>,
    /// A prompt's synthesis failed: no more attempts.
    failed: AtomicBool,
    warned: AtomicBool,
    cache_warned: AtomicBool,
    prompts: Mutex<HashMap<(&'static str, Prompt), Arc<Clip>>>,
    names: Mutex<NameCache>,
    chime: Arc<Clip>,
}

/// Recently spoken names: key → (clip, last use), the least recently used dropped when full.
#[derive(Default)]
struct NameCache {
    map: HashMap<String, (Arc<Clip>, u64)>,
    tick: u64,
}

impl NameCache {
    fn get(&mut self, key: &str) -> Option<Arc<Clip>> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(key).map(|(c, t)| {
            *t = tick;
            c.clone()
        })
    }

    fn insert(&mut self, key: String, clip: Arc<Clip>) {
        self.tick += 1;
        if self.map.len() >= NAME_CACHE && !self.map.contains_key(&key) {
            if let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            {
                self.map.remove(&oldest);
            }
        }
        self.map.insert(key, (clip, self.tick));
    }
}

impl Prompts {
    /// Prompts cached under `dir` (created if missing), spoken by `CONFAB_ESPEAK` or else
    /// `espeak-ng` from PATH.
    pub fn new(dir: PathBuf) -> Prompts {
        let espeak = std::env::var_os("CONFAB_ESPEAK")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "espeak-ng".into());
        Prompts::with_espeak(dir, espeak)
    }

    /// Prompts cached under `dir`, spoken by the program `espeak` (a path, or a name looked
    /// up on PATH).
    pub fn with_espeak(dir: PathBuf, espeak: impl Into<OsString>) -> Prompts {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!("prompts: cannot create {}: {e}", dir.display());
        }
        Prompts {
            dir,
            espeak: espeak.into(),
            found: OnceLock::new(),
            failed: AtomicBool::new(false),
            warned: AtomicBool::new(false),
            cache_warned: AtomicBool::new(false),
            prompts: Mutex::new(HashMap::new()),
            names: Mutex::new(NameCache::default()),
            chime: Arc::new(chime()),
        }
    }

    /// Whether speech can be made (espeak-ng found); otherwise prompts are tones.
    pub fn can_speak(&self) -> bool {
        let found = *self.found.get_or_init(|| match self.probe() {
            Ok(()) => true,
            Err(e) => {
                self.warn_once(&e);
                false
            }
        });
        found && !self.failed.load(Ordering::Relaxed)
    }

    /// Makes (or loads) every prompt of these languages (blocking).
    pub fn prepare(&self, langs: &[&str]) {
        for l in langs {
            for &p in Prompt::ALL {
                self.prompt(l, p);
            }
        }
    }

    /// A prompt in `lang` (a Lync language such as "en-US"; unknown ones fall back to en-US).
    /// Blocking the first time unless prepared.
    pub fn prompt(&self, lang: &str, p: Prompt) -> Arc<Clip> {
        let l = lang_of(lang);
        if let Some(c) = lock(&self.prompts).get(&(l.code, p)) {
            return c.clone();
        }
        let text = text(l.texts, p);
        let key = key(l.prompt_voice, text);
        let path = self.dir.join(l.code).join(format!("{}.wav", p.file_name()));
        let clip = match load(&path, &key) {
            Some(c) => c,
            None => match self.make(l.prompt_voice, text, &path, &key) {
                Some(c) => c,
                None => return self.chime.clone(),
            },
        };
        let clip = Arc::new(clip);
        lock(&self.prompts).insert((l.code, p), clip.clone());
        clip
    }

    /// `text` spoken in `lang` (a participant's display name), cached (bounded). Blocking.
    pub fn speak(&self, lang: &str, text: &str) -> Arc<Clip> {
        let l = lang_of(lang);
        let name = clean_name(text);
        if name.is_empty() {
            return self.chime.clone();
        }
        let key = key(l.voice, &name);
        let mem_key = format!("{}/{key}", l.code);
        if let Some(c) = lock(&self.names).get(&mem_key) {
            return c;
        }
        let dir = self.dir.join(l.code).join("names");
        let path = dir.join(format!("{key}.wav"));
        let clip = match load(&path, &key) {
            Some(c) => c,
            None => {
                if !self.can_speak() {
                    return self.chime.clone();
                }
                match self.synthesize(l.voice, &name, &dir) {
                    Ok(c) => {
                        self.store(&path, &c, &key);
                        prune(&dir, NAME_FILES);
                        c
                    }
                    Err(e) => {
                        // A name that espeak-ng cannot say does not stop the prompts.
                        tracing::warn!("prompts: could not speak a name: {e}");
                        return self.chime.clone();
                    }
                }
            }
        };
        let clip = Arc::new(clip);
        lock(&self.names).insert(mem_key, clip.clone());
        clip
    }

    /// A prompt made by espeak-ng and written to the cache, or None (chime) without speech.
    fn make(&self, voice: &str, text: &str, path: &Path, key: &str) -> Option<Clip> {
        if !self.can_speak() {
            return None;
        }
        let dir = path.parent()?;
        match self.synthesize(voice, text, dir) {
            Ok(c) => {
                self.store(path, &c, key);
                Some(c)
            }
            Err(e) => {
                self.failed.store(true, Ordering::Relaxed);
                self.warn_once(&e);
                None
            }
        }
    }

    fn warn_once(&self, e: &str) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "prompts: no speech ({e}); the attendant plays a chime instead of each \
                 prompt not already in {} (install Debian's espeak-ng, or set CONFAB_ESPEAK)",
                self.dir.display()
            );
        }
    }

    fn temp_path(&self, dir: &Path, what: &str) -> PathBuf {
        // One counter for the process: two stores on one directory never share a name.
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        dir.join(format!(".{what}-{}-{n}.tmp", std::process::id()))
    }

    /// Runs `program` with `args`, stdin closed, output discarded, killed after `timeout`.
    fn run(&self, args: &[&std::ffi::OsStr], timeout: Duration) -> Result<(), String> {
        let mut child = Command::new(&self.espeak)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", self.espeak.to_string_lossy()))?;
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(st)) if st.success() => return Ok(()),
                Ok(Some(st)) => {
                    return Err(format!(
                        "{} exited with {st}",
                        self.espeak.to_string_lossy()
                    ))
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{} took too long", self.espeak.to_string_lossy()));
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{}: {e}", self.espeak.to_string_lossy()));
                }
            }
        }
    }

    fn probe(&self) -> Result<(), String> {
        self.run(&["--version".as_ref()], Duration::from_secs(10))
    }

    /// `text` spoken by `voice`: espeak-ng's WAV (a temporary file in `dir`), resampled,
    /// trimmed and normalised.
    fn synthesize(&self, voice: &str, text: &str, dir: &Path) -> Result<Clip, String> {
        // espeak-ng's output goes beside the cache file, or to the system's temporary
        // directory when the cache cannot be written (speech still works, uncached).
        let dir = match std::fs::create_dir_all(dir) {
            Ok(()) => dir.to_path_buf(),
            Err(_) => std::env::temp_dir(),
        };
        let tmp = self.temp_path(&dir, "espeak");
        let r = self.run(
            &[
                "-v".as_ref(),
                voice.as_ref(),
                "-s".as_ref(),
                "160".as_ref(),
                "-w".as_ref(),
                tmp.as_os_str(),
                "--".as_ref(),
                text.as_ref(),
            ],
            ESPEAK_TIMEOUT,
        );
        let bytes = r.and_then(|()| {
            let len = std::fs::metadata(&tmp).map_err(|e| e.to_string())?.len();
            if len > 64 << 20 {
                return Err("espeak-ng wrote more than 64 MiB".into());
            }
            std::fs::read(&tmp).map_err(|e| e.to_string())
        });
        let _ = std::fs::remove_file(&tmp);
        let clip = Clip::from_wav(&bytes?)?;
        let clip = finish(clip.pcm());
        if clip.is_empty() {
            return Err("espeak-ng made only silence".into());
        }
        Ok(clip)
    }

    /// Writes `clip` to `path` (a temporary file renamed over it).
    fn store(&self, path: &Path, clip: &Clip, key: &str) {
        let Some(dir) = path.parent() else { return };
        let tmp = self.temp_path(dir, "clip");
        let r = std::fs::write(&tmp, wav::to_wav_with_comment(clip, &comment(key)))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = r {
            let _ = std::fs::remove_file(&tmp);
            if !self.cache_warned.swap(true, Ordering::Relaxed) {
                tracing::warn!("prompts: cannot cache {}: {e}", path.display());
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The cache key of a text spoken by a voice: hex of SHA-256 (first 128 bits).
fn key(voice: &str, text: &str) -> String {
    let mut h = Sha256::new();
    for part in [PROCESSING, voice, text] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn comment(key: &str) -> String {
    format!("confab-prompt {key}")
}

/// A cached clip, if the file exists and was made from the same voice and text.
fn load(path: &Path, key: &str) -> Option<Clip> {
    let len = std::fs::metadata(path).ok()?.len();
    if len > 64 << 20 {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    if wav::wav_comment(&bytes)? != comment(key) {
        return None;
    }
    Clip::from_wav(&bytes).ok().filter(|c| !c.is_empty())
}

/// Keeps at most `max` `.wav` files in `dir`, removing the least recently modified.
fn prune(dir: &Path, max: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    if files.len() <= max {
        return;
    }
    files.sort();
    let excess = files.len() - max;
    for (_, p) in files.into_iter().take(excess) {
        let _ = std::fs::remove_file(p);
    }
}

/// A display name made safe to speak: control characters and brackets (espeak-ng's `[[…]]`
/// phoneme input) become spaces, whitespace runs one space, leading dashes and spaces are
/// dropped, at most 64 characters.
pub fn clean_name(name: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    let mut space = false;
    for c in name.chars() {
        if chars >= NAME_CHARS {
            break;
        }
        let c = if c.is_control() || c.is_whitespace() || matches!(c, '[' | ']') {
            ' '
        } else {
            c
        };
        if out.is_empty() && (c == ' ' || c == '-') {
            continue;
        }
        if c == ' ' {
            space = true;
            continue;
        }
        if space {
            out.push(' ');
            chars += 1;
            space = false;
            if chars >= NAME_CHARS {
                break;
            }
        }
        out.push(c);
        chars += 1;
    }
    out
}

/// The fallback for every prompt without speech: 660 Hz then 880 Hz, 350 ms in all.
fn chime() -> Clip {
    Clip::concat(&[
        &Clip::tone(660.0, 150, 8000),
        &Clip::silence(40),
        &Clip::tone(880.0, 160, 8000),
    ])
}

/// Trims leading and trailing silence (keeping 20 ms and 60 ms of margin) and brings the
/// level to an RMS of about -16 dBFS, peaks held at -2 dBFS by a smooth limiter (the gain
/// drops ahead of a peak and comes back over about 50 ms) instead of clipping.
fn finish(pcm: &[i16]) -> Clip {
    let peak = pcm.iter().map(|&s| (s as i32).abs()).max().unwrap_or(0);
    if peak < 64 {
        return Clip::from_pcm16k(Vec::new());
    }
    let floor = (peak / 50).max(32); // about -34 dB below the peak
    let first = pcm
        .iter()
        .position(|&s| (s as i32).abs() > floor)
        .unwrap_or(0);
    let last = pcm
        .iter()
        .rposition(|&s| (s as i32).abs() > floor)
        .unwrap_or(0);
    let ms = MIX_RATE as usize / 1000;
    let start = first.saturating_sub(20 * ms);
    let end = (last + 1 + 60 * ms).min(pcm.len());
    let body = &pcm[start..end];
    let rms = (body.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / body.len() as f64).sqrt();
    // -14.5 before the limiter comes out at about -16 after it.
    let target_rms = 32768.0 * 10f64.powf(-14.5 / 20.0);
    let ceiling = 32768.0 * 10f64.powf(-2.0 / 20.0);
    let gain = (target_rms / rms.max(1.0)).min(10.0);
    // The gain each sample may have, held over ±2 ms ...
    let want: Vec<f64> = body
        .iter()
        .map(|&s| gain.min(ceiling / (s as f64).abs().max(1.0)))
        .collect();
    let hold = 2 * ms;
    let mut g = Vec::with_capacity(want.len());
    let mut window: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    for i in 0..want.len() + hold {
        // Sliding minimum: `window` holds indices of increasing `want`.
        if i < want.len() {
            while window.back().is_some_and(|&j| want[j] >= want[i]) {
                window.pop_back();
            }
            window.push_back(i);
        }
        if i >= hold {
            let centre = i - hold;
            while window.front().is_some_and(|&j| j + hold < centre) {
                window.pop_front();
            }
            g.push(want[*window.front().unwrap_or(&centre)]);
        }
    }
    // ... then smoothed both ways: it may fall at once, and rises back over about 50 ms.
    let k = 1.0 / (50 * ms) as f64;
    for i in 1..g.len() {
        g[i] = g[i].min(g[i - 1] + (g[i] - g[i - 1]) * k);
    }
    for i in (0..g.len().saturating_sub(1)).rev() {
        g[i] = g[i].min(g[i + 1] + (g[i] - g[i + 1]) * k);
    }
    Clip::from_pcm16k(
        body.iter()
            .zip(&g)
            .map(|(&s, &g)| (s as f64 * g).round().clamp(-32768.0, 32767.0) as i16)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustfft::{num_complex::Complex, FftPlanner};

    /// Whether espeak-ng is here. Without it the speech tests are skipped with a message,
    /// unless `CI` is set: CI installs it, so there its absence is a failure.
    fn espeak_or_skip(test: &str) -> bool {
        let ok = Command::new("espeak-ng")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
            assert!(
                !ci,
                "{test}: espeak-ng is not installed (CI=true requires it)"
            );
            eprintln!("SKIPPED {test}: espeak-ng is not installed (apt-get install espeak-ng)");
        }
        ok
    }

    fn rms(pcm: &[i16]) -> f64 {
        (pcm.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
    }

    /// The share of the clip's energy (DC excluded) between `lo` and `hi` Hz.
    fn band_ratio(pcm: &[i16], lo: f64, hi: f64) -> f64 {
        // Zero-padded to a power of two: a fast plan for any length.
        let n = pcm.len().next_power_of_two();
        let mut buf: Vec<Complex<f64>> = pcm.iter().map(|&s| Complex::new(s as f64, 0.0)).collect();
        buf.resize(n, Complex::new(0.0, 0.0));
        FftPlanner::new().plan_fft_forward(n).process(&mut buf);
        let (mut band, mut total) = (0.0, 0.0);
        for (i, c) in buf.iter().enumerate().take(n / 2 + 1).skip(1) {
            let hz = i as f64 * MIX_RATE as f64 / n as f64;
            let e = c.norm_sqr();
            total += e;
            if (lo..=hi).contains(&hz) {
                band += e;
            }
        }
        band / total.max(f64::MIN_POSITIVE)
    }

    /// A prompt: 0.5 s to `max_secs` of speech.
    fn assert_speech(what: &str, c: &Clip, max_secs: f64) {
        let secs = c.duration().as_secs_f64();
        assert!((0.5..=max_secs).contains(&secs), "{what}: {secs:.2} s");
        assert_spoken(what, c);
    }

    /// A name ("Jo" is short): at least 0.2 s, at most 12, of speech.
    fn assert_name(what: &str, c: &Clip) {
        let secs = c.duration().as_secs_f64();
        assert!((0.2..=12.0).contains(&secs), "{what}: {secs:.2} s");
        assert_spoken(what, c);
    }

    fn assert_spoken(what: &str, c: &Clip) {
        let level = rms(c.pcm());
        assert!(level > 2000.0, "{what}: RMS {level:.0}");
        let ratio = band_ratio(c.pcm(), 300.0, 3400.0);
        assert!(
            ratio > 0.5,
            "{what}: {:.0} % of the energy in 300-3400 Hz",
            ratio * 100.0
        );
        let peak = c.pcm().iter().map(|&s| (s as i32).abs()).max().unwrap();
        assert!(peak <= 26100, "{what}: peak {peak} above -2 dBFS");
        assert!(c.pcm() != chime().pcm(), "{what}: the chime, not speech");
    }

    fn espeak() -> OsString {
        "espeak-ng".into()
    }

    const MISSING: &str = "/nonexistent/confab-test/espeak-ng";

    #[test]
    fn finish_trims_levels_and_limits_without_clipping() {
        // 0.3 s of silence, a quiet burst with one loud click, 0.5 s of silence.
        let mut pcm = vec![0i16; 4800];
        let burst = Clip::tone(500.0, 400, 2000);
        pcm.extend_from_slice(burst.pcm());
        pcm[4800 + 3000] = 30000;
        pcm.extend(std::iter::repeat_n(0, 8000));
        let c = finish(&pcm);
        // Trimmed to the burst (less its ramps' quietest parts) plus 20 ms before and
        // 60 ms after.
        let n = c.pcm().len();
        assert!((6400 + 1280 - 200..=6400 + 1280).contains(&n), "{n}");
        let peak = c.pcm().iter().map(|&s| (s as i32).abs()).max().unwrap();
        assert!(peak <= 26100, "peak {peak}");
        // The tone away from the click is raised to about -16 dBFS (-13 dBFS peak).
        let steady = &c.pcm()[320 + 400..320 + 2000];
        let level = 20.0 * (rms(steady) / 32768.0).log10();
        assert!((-17.0..=-13.0).contains(&level), "{level:.1} dBFS");
        // The click is held at the ceiling (-2 dBFS), not clipped, and the gain is back
        // 100 ms later.
        assert!((25000..=26100).contains(&peak), "click {peak}");
        let after = &c.pcm()[n - 960 - 1600..n - 960];
        let r = rms(after) / rms(steady);
        assert!((r - 1.0).abs() < 0.1, "{r}");
        assert!(finish(&[0; 1000]).is_empty());
        assert!(finish(&[]).is_empty());
    }

    #[test]
    fn prompts_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Prompts>();
    }

    #[test]
    fn names_languages_and_texts() {
        assert_eq!(Prompt::EnterConferenceId.file_name(), "enter-conference-id");
        assert_eq!(Prompt::DialInDisabled.file_name(), "dial-in-disabled");
        assert_eq!(Prompt::Welcome.file_name(), "welcome");
        let mut names: Vec<String> = Prompt::ALL.iter().map(|p| p.file_name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Prompt::ALL.len());
        assert_eq!(lang_of("fr-fr").code, "fr-FR");
        assert_eq!(lang_of("DE").code, "de-DE");
        assert_eq!(lang_of("xx-YY").code, "en-US");
        assert_eq!(lang_of("../../etc").code, "en-US");
        assert_eq!(lang_of("es-MX").voice, "es-419");
        assert_eq!(lang_of("pl-PL").texts, Texts::En);
        assert_eq!(lang_of("pl-PL").prompt_voice, "en-us");
        assert_eq!(languages().count(), 21);
        for t in [Texts::En, Texts::Fr, Texts::De, Texts::Es] {
            for &p in Prompt::ALL {
                let s = text(t, p);
                assert!(!s.is_empty() && !s.starts_with('-'), "{t:?} {p:?}");
            }
        }
        // Every translation differs from English (nothing left untranslated).
        for t in [Texts::Fr, Texts::De, Texts::Es] {
            for &p in Prompt::ALL {
                assert_ne!(text(t, p), text(Texts::En, p), "{t:?} {p:?}");
            }
        }
        assert_ne!(key("en-us", "a"), key("en-gb", "a"));
        assert_ne!(key("en-us", "a"), key("en-us", "b"));
        assert_eq!(key("en-us", "a").len(), 32);
    }

    #[test]
    fn hostile_names_are_cleaned() {
        assert_eq!(clean_name("-x"), "x");
        assert_eq!(clean_name("--help me"), "help me");
        assert_eq!(clean_name(" - -v en"), "v en");
        assert_eq!(
            clean_name("Eve\u{1b}[31m\u{7}Red\r\nTeam\t"),
            "Eve 31m Red Team"
        );
        assert_eq!(clean_name("[[h@l'oU]]"), "h@l'oU");
        assert_eq!(clean_name("\0\n\t  "), "");
        assert_eq!(clean_name("Zoë  Ødegård-Smith"), "Zoë Ødegård-Smith");
        let long = "ab ".repeat(4000);
        let c = clean_name(&long);
        assert_eq!(c.chars().count(), 64);
        assert!(!c.ends_with(' ') || c.chars().count() == 64);
        assert_eq!(clean_name(&"é".repeat(10_000)).chars().count(), 64);
    }

    #[test]
    fn name_cache_is_bounded_and_keeps_the_recently_used() {
        let mut c = NameCache::default();
        let clip = Arc::new(Clip::silence(1));
        for i in 0..NAME_CACHE {
            c.insert(format!("k{i}"), clip.clone());
        }
        assert!(c.get("k0").is_some()); // k0 is now recent; k1 the oldest
        c.insert("new".into(), clip.clone());
        assert_eq!(c.map.len(), NAME_CACHE);
        assert!(c.get("k0").is_some() && c.get("new").is_some() && c.get("k1").is_none());
        for i in 0..1000 {
            c.insert(format!("x{i}"), clip.clone());
        }
        assert_eq!(c.map.len(), NAME_CACHE);
    }

    #[test]
    fn prune_keeps_the_newest_name_files() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..10 {
            let p = d.path().join(format!("{i}.wav"));
            std::fs::write(&p, b"x").unwrap();
            let t = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + i);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        std::fs::write(d.path().join("other.txt"), b"x").unwrap();
        prune(d.path(), 4);
        let mut left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["6.wav", "7.wav", "8.wav", "9.wav", "other.txt"]);
    }

    #[test]
    fn missing_or_failing_espeak_gives_the_chime() {
        let chime = chime();
        assert!(chime.duration() >= Duration::from_millis(300));
        assert!(rms(chime.pcm()) > 3000.0);
        assert!(band_ratio(chime.pcm(), 300.0, 3400.0) > 0.95);
        for program in [MISSING, "false", "true"] {
            // "true" runs but writes no WAV: synthesis fails, which counts as no speech.
            let d = tempfile::tempdir().unwrap();
            let p = Prompts::with_espeak(d.path().to_path_buf(), program);
            for &pr in Prompt::ALL {
                assert_eq!(*p.prompt("en-US", pr), chime, "{program} {pr:?}");
            }
            assert_eq!(*p.prompt("de-DE", Prompt::Welcome), chime);
            assert_eq!(*p.speak("en-US", "Alice"), chime);
            assert!(!p.can_speak(), "{program}");
            p.prepare(&["fr-FR"]);
            // Nothing was cached, and no temporary file is left.
            let files: Vec<_> = walk(d.path());
            assert!(files.is_empty(), "{program}: {files:?}");
        }
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().unwrap().is_dir() {
                    todo.push(e.path());
                } else {
                    out.push(e.path());
                }
            }
        }
        out
    }

    #[test]
    fn a_cached_file_is_used_only_for_its_own_voice_and_text() {
        // No espeak-ng needed: a file written under the right key is played, one from
        // another text (the text changed) is not.
        let d = tempfile::tempdir().unwrap();
        let tone = Clip::tone(1000.0, 600, 7000);
        let dir = d.path().join("fr-FR");
        std::fs::create_dir_all(&dir).unwrap();
        let right = key("fr-fr", text(Texts::Fr, Prompt::Locked));
        std::fs::write(
            dir.join("locked.wav"),
            wav::to_wav_with_comment(&tone, &comment(&right)),
        )
        .unwrap();
        let stale = key("fr-fr", "Ancien texte.");
        std::fs::write(
            dir.join("unlocked.wav"),
            wav::to_wav_with_comment(&tone, &comment(&stale)),
        )
        .unwrap();
        std::fs::write(dir.join("muted.wav"), b"RIFF garbage").unwrap();
        let p = Prompts::with_espeak(d.path().to_path_buf(), MISSING);
        assert_eq!(*p.prompt("fr-FR", Prompt::Locked), tone);
        assert_eq!(*p.prompt("fr-CA", Prompt::Locked), chime()); // fr-CA has its own files
        assert_eq!(*p.prompt("fr-FR", Prompt::Unlocked), chime());
        assert_eq!(*p.prompt("fr-FR", Prompt::Muted), chime());
    }

    #[test]
    fn every_prompt_is_speech_in_english_french_and_german() {
        if !espeak_or_skip("every_prompt_is_speech_in_english_french_and_german") {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let p = Prompts::with_espeak(d.path().to_path_buf(), espeak());
        assert!(p.can_speak());
        for lang in ["en-US", "fr-FR", "de-DE"] {
            for &pr in Prompt::ALL {
                let c = p.prompt(lang, pr);
                eprintln!(
                    "{lang} {pr:?}: {:.2} s, RMS {:.1} dBFS, {:.0} % in 300-3400 Hz",
                    c.duration().as_secs_f64(),
                    20.0 * (rms(c.pcm()) / 32768.0).log10(),
                    100.0 * band_ratio(c.pcm(), 300.0, 3400.0)
                );
                // The leaders' help lists six commands: longer than a sentence.
                let max = if pr == Prompt::HelpLeader { 25.0 } else { 12.0 };
                assert_speech(&format!("{lang} {pr:?}"), &c, max);
                let file = d.path().join(lang).join(format!("{}.wav", pr.file_name()));
                let on_disk = Clip::from_wav(&std::fs::read(&file).unwrap()).unwrap();
                assert_eq!(on_disk, *c, "{}", file.display());
                // The same Arc from memory the second time.
                assert!(Arc::ptr_eq(&c, &p.prompt(lang, pr)));
            }
        }
        // Different languages say different things.
        assert_ne!(
            p.prompt("en-US", Prompt::Welcome),
            p.prompt("de-DE", Prompt::Welcome)
        );
        // Spanish is spoken too.
        assert_speech("es-ES Welcome", &p.prompt("es-ES", Prompt::Welcome), 12.0);
        assert!(p.can_speak());
    }

    #[test]
    fn a_second_store_on_the_same_directory_reads_the_cache_without_espeak() {
        if !espeak_or_skip("a_second_store_on_the_same_directory_reads_the_cache_without_espeak") {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let first = Prompts::with_espeak(d.path().to_path_buf(), espeak());
        first.prepare(&["en-US"]);
        let alice = first.speak("en-US", "Alice Smith");
        assert_name("name", &alice);
        // The program named by CONFAB_ESPEAK does not exist: everything comes from the
        // cache. (Only this test uses Prompts::new, so setting the variable races nothing.)
        std::env::set_var("CONFAB_ESPEAK", MISSING);
        let second = Prompts::new(d.path().to_path_buf());
        std::env::remove_var("CONFAB_ESPEAK");
        assert!(!second.can_speak());
        for &pr in Prompt::ALL {
            assert_eq!(
                second.prompt("en-US", pr),
                first.prompt("en-US", pr),
                "{pr:?}"
            );
        }
        assert_eq!(second.speak("en-US", "Alice Smith"), alice);
        // A name spoken in another voice is another file: not in the cache.
        assert_eq!(*second.speak("de-DE", "Alice Smith"), chime());
        // And a prompt whose text changed is remade: make the file stale, a store with
        // espeak-ng rewrites it with the right key.
        let path = d.path().join("en-US").join("welcome.wav");
        std::fs::write(
            &path,
            wav::to_wav_with_comment(&Clip::tone(500.0, 700, 5000), &comment("0000")),
        )
        .unwrap();
        let third = Prompts::with_espeak(d.path().to_path_buf(), espeak());
        let w = third.prompt("en-US", Prompt::Welcome);
        assert_eq!(w, first.prompt("en-US", Prompt::Welcome));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            wav::wav_comment(&bytes).unwrap(),
            comment(&key("en-us", text(Texts::En, Prompt::Welcome)))
        );
    }

    #[test]
    fn hostile_names_are_spoken_safely() {
        if !espeak_or_skip("hostile_names_are_spoken_safely") {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let p = Prompts::with_espeak(d.path().to_path_buf(), espeak());
        // "-x" would be espeak-ng's phoneme option, "--version" its version: both spoken.
        for name in [
            "-x",
            "--version",
            "-w /tmp/owned.wav",
            "Eve\u{1b}[31m\u{7}\r\nBob",
        ] {
            let c = p.speak("en-US", name);
            assert_name(&format!("{name:?}"), &c);
        }
        let huge = "Bartholomew ".repeat(900); // 10 kB
        let c = p.speak("en-US", &huge);
        assert_name("10 kB name", &c);
        assert_eq!(*p.speak("en-US", "\u{0}\u{1}\n\t -- "), chime());
        assert_eq!(*p.speak("en-US", ""), chime());
        // Names are cached by their cleaned text; the file name is a hash.
        let names: Vec<PathBuf> = walk(&d.path().join("en-US").join("names"));
        assert_eq!(names.len(), 5, "{names:?}");
        for f in &names {
            let n = f.file_name().unwrap().to_str().unwrap();
            assert!(n.len() == 36 && n.ends_with(".wav"), "{n}");
        }
        assert!(!Path::new("/tmp/owned.wav").exists());
        // Japanese and Polish voices speak names; their prompts are English.
        assert_name("ja-JP name", &p.speak("ja-JP", "Tanaka"));
        assert_speech("pl-PL prompt", &p.prompt("pl-PL", Prompt::Muted), 12.0);
    }

    #[test]
    fn an_unwritable_cache_still_speaks() {
        if !espeak_or_skip("an_unwritable_cache_still_speaks") {
            return;
        }
        // The cache directory is a file: nothing can be cached, speech still works.
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("prompts");
        std::fs::write(&file, b"not a directory").unwrap();
        let p = Prompts::with_espeak(file.clone(), espeak());
        assert_speech("uncached", &p.prompt("en-US", Prompt::Goodbye), 12.0);
        assert_name("uncached name", &p.speak("en-US", "Carol"));
        assert!(p.can_speak());
        assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
    }

    #[test]
    fn the_same_prompt_made_at_once_by_many_threads() {
        if !espeak_or_skip("the_same_prompt_made_at_once_by_many_threads") {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let a = Prompts::with_espeak(d.path().to_path_buf(), espeak());
        let b = Prompts::with_espeak(d.path().to_path_buf(), espeak());
        let clips: Vec<Arc<Clip>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|i| {
                    let p = if i % 2 == 0 { &a } else { &b };
                    s.spawn(move || {
                        let c = p.prompt("de-DE", Prompt::LobbyAdmitted);
                        let n = p.speak("de-DE", "Jürgen");
                        assert_name("name", &n);
                        c
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for c in &clips {
            assert_speech("de-DE LobbyAdmitted", c, 12.0);
            assert_eq!(**c, *clips[0]);
        }
        let files = walk(d.path());
        assert_eq!(
            files.len(),
            2,
            "one prompt, one name, no temporary file: {files:?}"
        );
        let c = Prompts::with_espeak(d.path().to_path_buf(), MISSING);
        assert_eq!(c.prompt("de-DE", Prompt::LobbyAdmitted), clips[0]);
    }
}
