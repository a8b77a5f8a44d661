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

/// What a failed sync means for the conseillère, in French, with what to do: the line `sync`
/// prints (before the count of changes kept) and the state the *Synchronisation* page shows.
/// The technical detail (English, for a support call) is `e`'s own text, which callers add.
pub fn sync_failure_fr(e: &crate::sync::SyncError) -> String {
    use crate::sync::SyncError as E;
    use tournee_proto::ProtocolError as P;
    let unreachable =
        "le serveur est injoignable pour l'instant (pas de réseau, ou serveur arrêté) ; \
                       la synchronisation reprendra quand le réseau reviendra";
    match e {
        E::Unreachable { .. }
        | E::Socket { .. }
        | E::TimedOut(_)
        | E::Connection(_)
        | E::Read(_)
        | E::Write(_)
        | E::EndedEarly => unreachable.to_owned(),
        E::Timeout(_) => "le serveur n'a pas répondu à temps (pas de réseau, réseau trop lent, ou \
                          serveur arrêté) ; ce qu'il a déjà confirmé est gardé ; la synchronisation \
                          reprendra d'où elle en était"
            .to_owned(),
        E::Refused(_) => "le serveur a refusé cet ordinateur (appareil révoqué, ou inscrit auprès d'un \
                          autre serveur) ; demandez à l'administrateur un nouveau fichier d'inscription \
                          puis lancez `tournee-agent reenrol --bundle FICHIER`"
            .to_owned(),
        E::Untrusted(_) => "cet ordinateur ne reconnaît pas le serveur (un autre serveur, ou quelqu'un \
                            entre les deux) ; vérifiez l'adresse du serveur, ou réinscrivez cet \
                            ordinateur (`tournee-agent reenrol --bundle FICHIER`)"
            .to_owned(),
        E::ClockWrong(text) => text.clone(),
        E::Superseded => e.to_string(),
        E::ClosedByServer { .. } => {
            "le serveur a fermé la connexion en cours de synchronisation".to_owned()
        }
        E::Protocol(P::Remote {
            code: tournee_proto::wire::ErrorCode::Unavailable,
            ..
        }) => "le serveur est indisponible pour l'instant (arrêt, maintenance ou surcharge) ; \
               la synchronisation reprendra quand il sera de retour"
            .to_owned(),
        E::Protocol(P::VersionMismatch { .. }) => "le serveur et cet ordinateur n'ont pas la même \
                                                   version de Tournée ; faites mettre à jour le plus \
                                                   ancien des deux"
            .to_owned(),
        E::Protocol(P::ServerBehind { .. }) => "le serveur a perdu des changements qu'il avait \
                                                confirmés (restauré d'une sauvegarde ?) ; prévenez \
                                                l'administrateur ; ceux de cet ordinateur sont gardés"
            .to_owned(),
        E::Protocol(P::Store(tournee_core::store::StoreError::DiskFull { .. })) => {
            "le disque de cet ordinateur est plein ; libérez de la place".to_owned()
        }
        E::Protocol(_) => "la synchronisation s'est interrompue sur une erreur ; si cela se répète, \
                           signalez-le avec le détail technique"
            .to_owned(),
    }
}

/// Whether `sync_failure_fr` already says all there is (its text is the error's own).
pub fn sync_failure_is_french(e: &crate::sync::SyncError) -> bool {
    matches!(
        e,
        crate::sync::SyncError::ClockWrong(_) | crate::sync::SyncError::Superseded
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::SyncError;

    #[test]
    fn a_failed_sync_is_told_in_french_with_what_to_do() {
        let unreachable = SyncError::Unreachable {
            addrs: "127.0.0.1:4433".into(),
            detail: "timed out".into(),
        };
        assert!(sync_failure_fr(&unreachable).starts_with("le serveur est injoignable"));
        let refused = sync_failure_fr(&SyncError::Refused("revoked".into()));
        assert!(
            refused.contains("tournee-agent reenrol --bundle FICHIER"),
            "{refused}"
        );
        assert!(
            !refused.contains("revoked"),
            "the detail is the caller's to add"
        );
        let clock = SyncError::ClockWrong("l'horloge de cet ordinateur retarde".into());
        assert_eq!(
            sync_failure_fr(&clock),
            "l'horloge de cet ordinateur retarde"
        );
        assert!(sync_failure_is_french(&clock) && !sync_failure_is_french(&unreachable));
        assert!(sync_failure_fr(&SyncError::Timeout(3)).starts_with("le serveur n'a pas répondu"));
        // A server shutting down for maintenance is not an error to report.
        let stopping = SyncError::Protocol(tournee_proto::ProtocolError::Remote {
            code: tournee_proto::wire::ErrorCode::Unavailable,
            message: "server shutting down; retry later".into(),
        });
        assert!(
            sync_failure_fr(&stopping).starts_with("le serveur est indisponible pour l'instant"),
            "{}",
            sync_failure_fr(&stopping)
        );
    }
}
