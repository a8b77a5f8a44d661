//! The words both the CLI and the web UI show for stored things: a commune's name, the
//! person an id stands for, the server's refusal reasons in French with what to do.
//!
//! Reads through the `Store` trait and the reference data; formats no pages or tables.

use uuid::Uuid;

use tournee_core::actions::people;
use tournee_core::model::Field;
use tournee_core::refdata::RefData;
use tournee_core::store::Store;

/// The name of the commune `code` names (the code itself when the reference data lacks it).
pub fn commune_name(code: Option<&str>) -> String {
    code.map(|c| {
        RefData::get()
            .commune(c)
            .map_or_else(|| c.to_owned(), |com| com.name.clone())
    })
    .unwrap_or_default()
}

/// The display name of the person `id` stands for ("" when none or not held here).
pub fn person_name(store: &dyn Store, id: Option<Uuid>) -> String {
    let Some(id) = id else {
        return String::new();
    };
    people::surviving_person(store, id)
        .ok()
        .and_then(|p| store.record(p).ok().flatten())
        .and_then(|p| p.text(Field::Name).map(str::to_owned))
        .unwrap_or_default()
}

/// The server's reason (kept as its English log text) told in French, with what to do.
pub fn reason_fr(reason: &str) -> String {
    let (head, detail) = reason.split_once(':').unwrap_or((reason, ""));
    match head {
        "clock ahead" => "horloge en avance : cet ordinateur était en avance sur le serveur ; \
                          la modification repartira d'elle-même à la prochaine synchronisation"
            .to_owned(),
        "out of scope" => "hors périmètre : la fiche n'est ni de l'unité ni du territoire de cet \
                           ordinateur ; `tournee-agent rejected undo` l'efface ici"
            .to_owned(),
        "not allowed" => "non autorisé : ce champ est réservé au planificateur ; \
                          `tournee-agent rejected undo` l'efface ici"
            .to_owned(),
        "forged" => "identité refusée : la modification porte l'identité d'un autre appareil ; \
                     réinscrivez cet ordinateur (`tournee-agent reenrol`)"
            .to_owned(),
        "unknown record" => {
            "fiche inconnue du serveur : sa création a été refusée (elle repartira \
                             avec elle si c'était l'horloge) ou perdue lors d'une restauration du \
                             serveur ; `tournee-agent rejected undo` l'efface ici"
                .to_owned()
        }
        "invalid" => format!(
            "valeur refusée par le serveur ({}) ; `tournee-agent rejected undo` l'efface ici",
            detail.trim()
        ),
        _ => format!("refusée par le serveur : {reason}"),
    }
}
