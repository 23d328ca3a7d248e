//! The synthetic world: contact points, channels, intents, devices and the seeded Markov walk.

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The five channels, indexed by the `CH_*` constants.
pub const CHANNELS: [&str; 5] = ["web", "app", "email", "call", "store"];
const CH_WEB: u8 = 0;
const CH_APP: u8 = 1;
const CH_EMAIL: u8 = 2;
const CH_CALL: u8 = 3;
const CH_STORE: u8 = 4;

/// Event kinds, indexed by the `K_*` constants.
pub const KINDS: [&str; 5] = ["view", "click", "add_to_cart", "purchase", "signup"];
const K_VIEW: u8 = 0;
const K_CLICK: u8 = 1;
const K_ADD_TO_CART: u8 = 2;
/// Index of `purchase` in [`KINDS`].
pub const K_PURCHASE: u8 = 3;
const K_SIGNUP: u8 = 4;

/// Journey intents (the `intent` attribute).
pub const INTENTS: [&str; 4] = ["shoes", "electronics", "outdoor", "support"];
const I_SUPPORT: u8 = 3;

/// Devices (the `device` attribute).
pub const DEVICES: [&str; 7] = ["desktop", "mobile", "tablet", "ios", "android", "phone", "pos"];

/// How a contact point picks its channel.
#[derive(Clone, Copy, PartialEq)]
enum Medium {
    /// The session's digital channel (web or app).
    Digital,
    /// Always the given channel.
    Fixed(u8),
}

/// A contact point: name, channel rule and the intent it belongs to (if any).
struct Cp {
    name: &'static str,
    medium: Medium,
    intent: Option<u8>,
}

const fn cp(name: &'static str, medium: Medium, intent: Option<u8>) -> Cp {
    Cp { name, medium, intent }
}

use Medium::{Digital, Fixed};
const SHOES: Option<u8> = Some(0);
const ELEC: Option<u8> = Some(1);
const OUTDOOR: Option<u8> = Some(2);
const SUPPORT: Option<u8> = Some(I_SUPPORT);

const CPS: [Cp; 31] = [
    cp("home", Digital, None),
    cp("app/home", Fixed(CH_APP), None),
    cp("search", Digital, None),
    cp("category/shoes", Digital, SHOES),
    cp("category/electronics", Digital, ELEC),
    cp("category/outdoor", Digital, OUTDOOR),
    cp("product/101", Digital, SHOES),
    cp("product/102", Digital, SHOES),
    cp("product/201", Digital, ELEC),
    cp("product/202", Digital, ELEC),
    cp("product/301", Digital, OUTDOOR),
    cp("compare", Digital, None),
    cp("reviews", Digital, None),
    cp("pricing", Digital, None),
    cp("cart", Digital, None),
    cp("checkout", Digital, None),
    cp("payment_done", Digital, None),
    cp("account/signup", Digital, None),
    cp("account/login", Digital, None),
    cp("account/orders", Digital, SUPPORT),
    cp("help/faq", Digital, SUPPORT),
    cp("help/returns", Digital, SUPPORT),
    cp("chat/support", Digital, SUPPORT),
    cp("email/newsletter-2026-03", Fixed(CH_EMAIL), None),
    cp("email/cart-reminder", Fixed(CH_EMAIL), None),
    cp("campaign/spring-sale", Fixed(CH_WEB), None),
    cp("social/instagram-ad", Fixed(CH_WEB), None),
    cp("store/berlin", Fixed(CH_STORE), None),
    cp("store/munich", Fixed(CH_STORE), None),
    cp("call/support", Fixed(CH_CALL), SUPPORT),
    cp("call/sales", Fixed(CH_CALL), None),
];
const N_CP: usize = CPS.len();

/// Name of contact point `index`.
pub fn cp_name(index: u8) -> &'static str {
    CPS[index as usize].name
}

const HOME: u8 = 0;
const APP_HOME: u8 = 1;
const SEARCH: u8 = 2;
const CAT_SHOES: u8 = 3;
const CAT_ELEC: u8 = 4;
const CAT_OUTDOOR: u8 = 5;
const P101: u8 = 6;
const P102: u8 = 7;
const P201: u8 = 8;
const P202: u8 = 9;
const P301: u8 = 10;
const COMPARE: u8 = 11;
const REVIEWS: u8 = 12;
const PRICING: u8 = 13;
const CART: u8 = 14;
const CHECKOUT: u8 = 15;
const PAYMENT_DONE: u8 = 16;
const SIGNUP: u8 = 17;
const LOGIN: u8 = 18;
const ORDERS: u8 = 19;
const FAQ: u8 = 20;
const RETURNS: u8 = 21;
const CHAT: u8 = 22;
const NEWSLETTER: u8 = 23;
const CART_REMINDER: u8 = 24;
const CAMPAIGN: u8 = 25;
const SOCIAL_AD: u8 = 26;
const STORE_BERLIN: u8 = 27;
const STORE_MUNICH: u8 = 28;
const CALL_SUPPORT: u8 = 29;
const CALL_SALES: u8 = 30;
/// Pseudo target: the session ends.
const EXIT: u8 = u8::MAX;

const CATEGORIES: [u8; 3] = [CAT_SHOES, CAT_ELEC, CAT_OUTDOOR];
const PRODUCTS: [u8; 5] = [P101, P102, P201, P202, P301];

/// Base transition weights (before intent bias and seeded jitter): funnel forward, step back,
/// compare, cross-channel switches, exit.
fn base_transitions(from: u8) -> Vec<(u8, f64)> {
    let mut t: Vec<(u8, f64)> = Vec::new();
    let each = |t: &mut Vec<(u8, f64)>, targets: &[u8], w: f64| {
        t.extend(targets.iter().map(|&c| (c, w)));
    };
    match from {
        HOME | APP_HOME => {
            t.extend([(SEARCH, 18.0), (LOGIN, 4.0), (FAQ, 3.0), (EXIT, 14.0)]);
            each(&mut t, &CATEGORIES, 8.0);
            each(&mut t, &PRODUCTS, 2.5);
            t.push(if from == HOME { (CAMPAIGN, 3.0) } else { (CART, 3.0) });
        }
        SEARCH => {
            t.extend([(SEARCH, 5.0), (FAQ, 2.0), (EXIT, 12.0)]);
            each(&mut t, &PRODUCTS, 8.0);
            each(&mut t, &CATEGORIES, 4.0);
        }
        CAT_SHOES => t.extend([(P101, 15.0), (P102, 15.0), (COMPARE, 3.0)]),
        CAT_ELEC => t.extend([(P201, 15.0), (P202, 15.0), (COMPARE, 5.0)]),
        CAT_OUTDOOR => t.extend([(P301, 22.0), (COMPARE, 2.0)]),
        P101 | P102 | P201 | P202 | P301 => {
            let (category, sibling) = match from {
                P101 => (CAT_SHOES, P102),
                P102 => (CAT_SHOES, P101),
                P201 => (CAT_ELEC, P202),
                P202 => (CAT_ELEC, P201),
                _ => (CAT_OUTDOOR, P101),
            };
            t.extend([
                (CART, 13.0),
                (REVIEWS, 8.0),
                (COMPARE, 6.0),
                (PRICING, 4.0),
                (sibling, 6.0),
                (category, 6.0),
                (SEARCH, 5.0),
                (CALL_SALES, 0.6),
                (CHAT, 0.8),
                (EXIT, 18.0),
            ]);
        }
        COMPARE | REVIEWS => {
            t.extend([(CART, 6.0), (EXIT, 10.0)]);
            t.push(if from == COMPARE { (REVIEWS, 3.0) } else { (COMPARE, 3.0) });
            each(&mut t, &PRODUCTS, 4.0);
        }
        PRICING => {
            t.extend([(CART, 8.0), (SIGNUP, 4.0), (CALL_SALES, 2.0), (CHAT, 2.0), (EXIT, 12.0)]);
            each(&mut t, &PRODUCTS, 2.0);
        }
        CART => {
            t.extend([(CHECKOUT, 20.0), (SEARCH, 3.0), (LOGIN, 4.0), (CALL_SALES, 1.0)]);
            t.push((EXIT, 16.0));
            each(&mut t, &PRODUCTS, 2.0);
        }
        CHECKOUT => t.extend([
            (PAYMENT_DONE, 40.0),
            (CART, 10.0),
            (SIGNUP, 6.0),
            (LOGIN, 4.0),
            (CHAT, 2.0),
            (FAQ, 2.0),
            (EXIT, 16.0),
        ]),
        PAYMENT_DONE => t.extend([(ORDERS, 10.0), (HOME, 4.0), (EXIT, 40.0)]),
        SIGNUP => t.extend([(CHECKOUT, 10.0), (HOME, 6.0), (EXIT, 12.0)]),
        LOGIN => t.extend([(ORDERS, 8.0), (CART, 6.0), (HOME, 6.0), (EXIT, 6.0)]),
        ORDERS => t.extend([(RETURNS, 6.0), (CALL_SUPPORT, 2.0), (EXIT, 15.0)]),
        FAQ => t.extend([(RETURNS, 6.0), (CHAT, 6.0), (CALL_SUPPORT, 4.0), (SEARCH, 3.0), (EXIT, 15.0)]),
        RETURNS => t.extend([(CHAT, 5.0), (CALL_SUPPORT, 4.0), (ORDERS, 3.0), (EXIT, 12.0)]),
        CHAT => t.extend([(FAQ, 3.0), (CALL_SUPPORT, 3.0), (EXIT, 15.0)]),
        NEWSLETTER => {
            t.extend([(CAMPAIGN, 10.0), (HOME, 4.0), (EXIT, 8.0)]);
            each(&mut t, &PRODUCTS, 3.0);
            each(&mut t, &CATEGORIES, 3.0);
        }
        CART_REMINDER => t.extend([(CART, 20.0), (CHECKOUT, 5.0), (EXIT, 8.0)]),
        CAMPAIGN | SOCIAL_AD => {
            t.extend([(SEARCH, 3.0), (EXIT, 13.0)]);
            each(&mut t, &PRODUCTS, 6.0);
            t.push(if from == CAMPAIGN { (CAT_SHOES, 4.0) } else { (CAMPAIGN, 4.0) });
        }
        STORE_BERLIN | STORE_MUNICH => t.extend([(CALL_SUPPORT, 0.5), (EXIT, 30.0)]),
        CALL_SUPPORT => t.extend([(FAQ, 2.0), (ORDERS, 2.0), (EXIT, 20.0)]),
        _ => t.extend([(CART, 3.0), (EXIT, 20.0)]), // CALL_SALES
    }
    if CATEGORIES.contains(&from) {
        t.extend([(SEARCH, 5.0), (HOME, 3.0), (EXIT, 12.0)]);
    }
    t
}

/// Cumulative transition table of one (intent, contact point).
#[derive(Default)]
struct Row {
    cumulative: Vec<u32>,
    targets: Vec<u8>,
}

/// The fixed world: per-intent transition tables derived from [`base_transitions`] with a
/// constant-seeded jitter, so every run (whatever `--seed`) shares the same journey structure.
pub struct Model {
    rows: Vec<Row>,
}

impl Model {
    /// Builds the transition tables.
    pub fn new() -> Self {
        let mut jitter = StdRng::seed_from_u64(0x5EED_57E9_570E);
        let mut rows = Vec::with_capacity(INTENTS.len() * N_CP);
        let bases: Vec<_> = (0..N_CP as u8).map(base_transitions).collect();
        let noise: Vec<Vec<f64>> =
            bases.iter().map(|b| b.iter().map(|_| jitter.random_range(0.7..1.3)).collect()).collect();
        for intent in 0..INTENTS.len() as u8 {
            for (base, noise) in bases.iter().zip(&noise) {
                let mut row = Row::default();
                let mut total = 0u32;
                for (&(target, weight), factor) in base.iter().zip(noise) {
                    let bias = match (target, CPS.get(target as usize).and_then(|c| c.intent)) {
                        (EXIT, _) => 1.0,
                        (_, Some(i)) if i == intent => 3.0,
                        (_, Some(_)) => 0.3,
                        (CART | CHECKOUT | PAYMENT_DONE, None) if intent == I_SUPPORT => 0.3,
                        _ => 1.0,
                    };
                    total += (weight * factor * bias * 100.0).round().max(1.0) as u32;
                    row.cumulative.push(total);
                    row.targets.push(target);
                }
                rows.push(row);
            }
        }
        Model { rows }
    }

    /// The next contact point after `from` in a session with `intent`, or `None` at exit.
    pub fn step(&self, rng: &mut impl Rng, intent: u8, from: u8) -> Option<u8> {
        let row = &self.rows[intent as usize * N_CP + from as usize];
        let pick = rng.random_range(0..*row.cumulative.last().expect("non-empty row"));
        let at = row.cumulative.partition_point(|&c| c <= pick);
        Some(row.targets[at]).filter(|&t| t != EXIT)
    }
}

/// Stable per-customer traits, derived from a hash of (seed, customer).
#[derive(Clone, Copy)]
pub struct Profile {
    bits: u64,
}

/// splitmix64 finaliser.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Profile {
    /// The profile of `customer` under `seed`.
    pub fn new(seed: u64, customer: u32) -> Self {
        Profile { bits: mix(seed ^ mix(u64::from(customer))) }
    }

    /// `n` bits starting at `at`, as a number.
    fn field(self, at: u32, n: u32) -> u64 {
        (self.bits >> at) & ((1 << n) - 1)
    }

    fn app_user(self) -> bool {
        self.field(0, 8) < 90 // ~35 %
    }

    fn intent(self) -> u8 {
        match self.field(8, 8) {
            0..100 => 0,
            100..170 => 1,
            170..220 => 2,
            _ => I_SUPPORT,
        }
    }

    fn web_device(self) -> u8 {
        match self.field(16, 8) {
            0..128 => 0,
            128..230 => 1,
            _ => 2,
        }
    }

    fn app_device(self) -> u8 {
        3 + (self.field(24, 8) < 110) as u8
    }

    fn store(self) -> u8 {
        if self.field(32, 8) < 160 { STORE_BERLIN } else { STORE_MUNICH }
    }

    /// Multiplier of the customer's basket values, 0.5 – 2.
    pub fn spend(self) -> f64 {
        0.5 + 1.5 * self.field(40, 16) as f64 / 65535.0
    }
}

/// A session in progress: who, how, and where it stands.
#[derive(Clone, Copy)]
pub struct Session {
    /// Customer index.
    pub customer: u32,
    /// Current contact point.
    pub cp: u8,
    /// The session's intent.
    pub intent: u8,
    /// Digital channel (web or app) for generic pages.
    digital: u8,
    /// Device used on the digital channel.
    digital_device: u8,
    /// Device used for email.
    email_device: u8,
    /// Events emitted so far.
    pub steps: u16,
}

impl Session {
    /// Starts a session of `customer`: entry channel, entry contact point, intent and devices.
    pub fn start(rng: &mut impl Rng, customer: u32, profile: Profile) -> Self {
        let app_user = profile.app_user();
        let entry_weights: [u32; 5] = if app_user { [25, 60, 10, 3, 2] } else { [63, 2, 22, 8, 5] };
        let mut pick = rng.random_range(0..entry_weights.iter().sum::<u32>());
        let mut channel = 0u8;
        while pick >= entry_weights[channel as usize] {
            pick -= entry_weights[channel as usize];
            channel += 1;
        }
        let digital = if channel == CH_APP || (app_user && rng.random_bool(0.5)) { CH_APP } else { CH_WEB };
        let intent = if rng.random_bool(0.7) { profile.intent() } else { rng.random_range(0..INTENTS.len() as u8) };
        let cp = match channel {
            CH_APP => APP_HOME,
            CH_EMAIL if rng.random_bool(0.3) => CART_REMINDER,
            CH_EMAIL => NEWSLETTER,
            CH_STORE => profile.store(),
            CH_CALL if intent == I_SUPPORT || rng.random_bool(0.5) => CALL_SUPPORT,
            CH_CALL => CALL_SALES,
            _ => {
                const WEB_ENTRIES: [u8; 12] =
                    [HOME, HOME, HOME, HOME, SEARCH, SEARCH, CAMPAIGN, SOCIAL_AD, P101, P201, CAT_SHOES, FAQ];
                let e = WEB_ENTRIES[rng.random_range(0..WEB_ENTRIES.len())];
                if intent == I_SUPPORT && e != HOME { FAQ } else { e }
            }
        };
        Session {
            customer,
            cp,
            intent,
            digital,
            digital_device: if digital == CH_APP { profile.app_device() } else { profile.web_device() },
            email_device: if rng.random_bool(0.6) { 1 } else { 0 },
            steps: 0,
        }
    }

    /// Channel and device of the current contact point.
    pub fn channel_device(&self) -> (u8, u8) {
        match CPS[self.cp as usize].medium {
            Digital => (self.digital, self.digital_device),
            Fixed(CH_APP) => (CH_APP, if self.digital == CH_APP { self.digital_device } else { 3 }),
            Fixed(CH_EMAIL) => (CH_EMAIL, self.email_device),
            Fixed(CH_CALL) => (CH_CALL, 5),
            Fixed(CH_STORE) => (CH_STORE, 6),
            Fixed(c) => (c, if self.digital == CH_WEB { self.digital_device } else { 1 }),
        }
    }

    /// Kind of the event at the current contact point.
    pub fn kind(&self, rng: &mut impl Rng) -> u8 {
        match self.cp {
            PAYMENT_DONE => K_PURCHASE,
            NEWSLETTER | CART_REMINDER | CAMPAIGN | SOCIAL_AD => K_CLICK,
            CART if rng.random_bool(0.8) => K_ADD_TO_CART,
            SIGNUP if rng.random_bool(0.7) => K_SIGNUP,
            STORE_BERLIN | STORE_MUNICH if rng.random_bool(0.3) => K_PURCHASE,
            CALL_SALES if rng.random_bool(0.2) => K_PURCHASE,
            P101 | P102 | P201 | P202 | P301 | SEARCH if rng.random_bool(0.25) => K_CLICK,
            _ => K_VIEW,
        }
    }
}
