#include "domain/ticket.h"

#include <algorithm>
#include <cctype>

#include "domain/fields.h"
#include "events/codec.h"

namespace chorus::domain::ticket {
namespace {

using events::Overloaded;

using fields::check_text;

// `complete`: a submission needs every field; a draft may lack the title and description.
// `signed_out`: no account, so no emitting structure to be attached to.
Decision<void> check_form(const Form& f, const Context& context, bool complete,
                          std::string_view rule, bool signed_out = false) {
  for (auto check :
       {check_text(f.emitting_structure_id, "emitting_structure_id", kCodeMax, !signed_out,
                   "Identifiant de l'organisation", rule),
        check_text(f.category, "category", kCodeMax, true, "Catégorie", rule),
        check_text(f.sub_category, "sub_category", kCodeMax, true, "Sous-catégorie", rule),
        check_text(f.title, "title", kTitleMax, complete, "Titre/Résumé", rule),
        check_text(f.description, "description", kDescriptionMax, complete, "Description longue",
                   rule),
        check_text(f.destination_structure_id, "destination_structure_id", kCodeMax, false,
                   "Organisation destinataire", rule),
        check_text(f.destination_service, "destination_service", kCodeMax, false,
                   "Service destinataire", rule)}) {
    if (!check) return check;
  }
  // The pair must be in the reference table: the category first, so that the message says
  // which of the two is unknown.
  if (context.categories != nullptr && !context.categories->has_category(f.category)) {
    return reject(errc::invalid_field, std::string(rule) + ".category", "category",
                  "Catégorie inconnue : « " + f.category + " ».");
  }
  if (context.categories != nullptr && !context.categories->contains(f.category, f.sub_category)) {
    return reject(errc::invalid_field, std::string(rule) + ".sub_category", "sub_category",
                  "La sous-catégorie « " + f.sub_category + " » n'existe pas dans la catégorie « " +
                      f.category + " ».");
  }
  // Object-bound pairs (seed 002): the object's type and number, an object the reference
  // objects know, whose recipient is the destination. Checked before the destination, which
  // the object gives.
  const std::string bound = context.categories != nullptr
                                ? context.categories->object_type(f.category, f.sub_category)
                                : std::string();
  if (context.categories != nullptr && bound.empty() &&
      (!f.object_type.empty() || !f.object_number.empty())) {
    return reject(errc::invalid_field, std::string(rule) + ".object",
                  f.object_type.empty() ? "object_number" : "object_type",
                  "Cette sous-catégorie ne porte sur aucun objet : ni type ni numéro d'objet.");
  }
  if (!bound.empty()) {
    for (auto check :
         {check_text(f.object_type, "object_type", kCodeMax, complete, "Type d'objet concerné",
                     rule),
          check_text(f.object_number, "object_number", kCodeMax, complete, "Numéro", rule)}) {
      if (!check) return check;
    }
    if (!f.object_type.empty() && f.object_type != bound) {
      return reject(errc::invalid_field, std::string(rule) + ".object_type", "object_type",
                    "Cette sous-catégorie porte sur un objet de type « " + bound + " ».");
    }
    if (!f.object_number.empty()) {
      if (f.object_type.empty()) {
        return reject(errc::invalid_field, std::string(rule) + ".object_type.required",
                      "object_type", "Le champ « Type d'objet concerné » est obligatoire.");
      }
      // Only the object's issuer may name it ("ma facture", seed 002). Anyone else gets the
      // answer an unknown number gets: a user must not learn, by probing numbers, that an
      // invoice exists nor, from the routed ticket, whom it was sent to.
      if (!context.object || context.object->issuer_structure_id.empty() ||
          context.object->issuer_structure_id != f.emitting_structure_id) {
        return reject(errc::invalid_field, std::string(rule) + ".object_unknown", "object_number",
                      "Le numéro saisi ne correspond à aucun objet de type « " + bound +
                          " » existant dans Chorus Pro.");
      }
      if (!f.destination_structure_id.empty() &&
          (f.destination_structure_id != context.object->structure_id ||
           f.destination_service != context.object->service)) {
        return reject(errc::invalid_field, std::string(rule) + ".object_destination",
                      "destination_structure_id",
                      "Un ticket portant sur un objet va au destinataire de cet objet.");
      }
    }
  }
  // Routing: "M-" goes to the destination (a draft may name it later; an object-bound pair
  // takes its object's), others to support.
  if (is_business(f.sub_category)) {
    if (complete && bound.empty() && f.destination_structure_id.empty()) {
      return reject(errc::invalid_field, std::string(rule) + ".destination",
                    "destination_structure_id",
                    "Une sous-catégorie « M- » s'adresse à un service métier : l'organisation "
                    "destinataire est obligatoire.");
    }
  } else if (!f.destination_structure_id.empty()) {
    return reject(errc::invalid_field, std::string(rule) + ".destination",
                  "destination_structure_id",
                  "Seules les sous-catégories « M- » ont une organisation destinataire ; les "
                  "autres vont au support technique.");
  }
  if (!f.destination_structure_id.empty() && !context.destination_exists) {
    return reject(
        errc::invalid_field, std::string(rule) + ".destination_unknown",
        f.destination_service.empty() ? "destination_structure_id" : "destination_service",
        "Organisation ou service destinataire inconnu ou inactif.");
  }
  if (f.destination_structure_id.empty() && !f.destination_service.empty()) {
    return reject(errc::invalid_field, std::string(rule) + ".destination_service",
                  "destination_service",
                  "Un service destinataire demande son organisation destinataire.");
  }
  if (signed_out && !f.emitting_structure_id.empty()) {
    return reject(errc::invalid_field, std::string(rule) + ".emitting_structure",
                  "emitting_structure_id",
                  "Un ticket en mode non connecté n'a pas de structure émettrice.");
  }
  if (!signed_out && !context.attached_to_emitting_structure) {
    return reject(errc::forbidden, std::string(rule) + ".emitting_structure",
                  "emitting_structure_id",
                  "Vous n'êtes pas rattaché à la structure émettrice choisie.");
  }
  if (!signed_out && !context.emitting_structure_active) {
    return reject(errc::invalid_field, std::string(rule) + ".emitting_structure_inactive",
                  "emitting_structure_id",
                  "La structure émettrice est désactivée : ses sollicitations restent "
                  "consultables, mais elle n'en émet plus.");
  }
  return {};
}

// The form as it is recorded: an object-bound ticket goes to its object's recipient
// (check_form has accepted the object).
Form routed(Form f, const Context& context) {
  if (!f.object_number.empty() && context.object) {
    f.destination_structure_id = context.object->structure_id;
    f.destination_service = context.object->service;
  }
  return f;
}

Decision<void> status_is(const State& state, std::initializer_list<Status> allowed,
                         std::string_view rule, std::string_view what) {
  for (Status st : allowed) {
    if (state.status == st) return {};
  }
  return reject(errc::wrong_status, std::string(rule) + ".status", "status",
                std::string(what) + " (statut actuel : " + to_string(state.status) + ").");
}

// A file name as the portal shows it and as a download offers it: no directory part, no
// control character (it goes into a Content-Disposition header; check_text already refuses the
// bidirectional overrides), no direction mark either (U+200E, U+200F, U+061C: a name is one
// run of text, and a mark inside it can still turn its extension around), not "." or "..".
Decision<void> check_file_name(const std::string& name, std::string_view rule) {
  if (auto ok = check_text(name, "name", kFileNameMax, true, "Nom du fichier", rule); !ok) {
    return ok;
  }
  if (name.size() > kFileNameMax) {
    return reject(errc::invalid_field, std::string(rule) + ".too_long", "name",
                  "Le nom du fichier dépasse " + std::to_string(kFileNameMax) + " octets.");
  }
  const bool bad_char = std::any_of(name.begin(), name.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7F || c == '/' || c == '\\';
  });
  const bool mark = name.find("\u200E") != std::string::npos ||
                    name.find("\u200F") != std::string::npos ||
                    name.find("\u061C") != std::string::npos;
  if (bad_char || mark || name == "." || name == "..") {
    return reject(errc::invalid_field, std::string(rule) + ".name", "name",
                  "Le nom du fichier ne peut contenir ni « / », ni « \\ », ni caractère de "
                  "contrôle, ni marque de sens d'écriture.");
  }
  return {};
}

// "type/subtype" (RFC 6838 characters), parameters allowed after ';'; printable ASCII only,
// since it is served back as the Content-Type of the download.
Decision<void> check_media_type(const std::string& media_type, std::string_view rule) {
  if (auto ok = check_text(media_type, "media_type", kCodeMax, true, "Type du fichier", rule);
      !ok) {
    return ok;
  }
  auto token_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           std::string_view("!#$&^_.+-").find(c) != std::string_view::npos;
  };
  const std::string_view full(media_type);
  const std::string_view essence = full.substr(0, full.find(';'));
  const auto slash = essence.find('/');
  const bool printable = std::all_of(full.begin(), full.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7F;
  });
  const bool shaped =
      slash != std::string_view::npos && slash > 0 && slash + 1 < essence.size() &&
      std::all_of(essence.begin(), essence.begin() + static_cast<long>(slash), token_char) &&
      std::all_of(essence.begin() + static_cast<long>(slash) + 1, essence.end(), token_char);
  if (!printable || !shaped) {
    return reject(errc::invalid_field, std::string(rule) + ".media_type", "media_type",
                  "Type de fichier invalide : attendu « type/sous-type », par exemple "
                  "« application/pdf ».");
  }
  return {};
}

bool is_sha256_hex(const std::string& v) {
  return v.size() == 64 && std::all_of(v.begin(), v.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// An address a message can be sent to: one '@', something before it, a dot in the domain, no
// space or control character. Whether it exists is the mailer's business.
Decision<void> check_email(const std::string& email, std::string_view rule) {
  if (auto ok = check_text(email, "email", kEmailMax, true, "Adresse e-mail", rule); !ok) {
    return ok;
  }
  if (email.size() > kEmailMax) {
    return reject(errc::invalid_field, std::string(rule) + ".too_long", "email",
                  "L'adresse e-mail dépasse " + std::to_string(kEmailMax) + " octets.");
  }
  const auto at = email.find('@');
  const bool shaped =
      at != std::string::npos && at > 0 && email.find('@', at + 1) == std::string::npos &&
      email.find('.', at + 2) != std::string::npos && email.back() != '.' &&
      std::none_of(email.begin(), email.end(),
                   [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7F; });
  if (!shaped) {
    return reject(errc::invalid_field, std::string(rule) + ".email", "email",
                  "Adresse e-mail invalide.");
  }
  return {};
}

enum class Side { emitter, recipient, either };

// Who may act: someone who may not see the ticket gets not_found (its existence must not
// leak); someone who sees it but is on the wrong side gets forbidden.
Decision<void> check_actor(const State& state, const Caller& caller, const Context& context,
                           Side side, std::string_view rule) {
  const bool emitter = state.status == Status::none || state.emitter_user_id == caller.user_id;
  // Recipients never see drafts.
  const bool submitted = state.status != Status::none && state.status != Status::draft &&
                         state.status != Status::deleted;
  const bool recipient = submitted && is_recipient(state, caller, context);
  const bool reader = submitted && is_business(state.sub_category) && context.business_reader;
  if (!emitter && !recipient && !reader) {
    return reject(errc::not_found, std::string(rule) + ".not_found", "ticket_id",
                  "Ticket introuvable.");
  }
  if (!emitter && !recipient) {
    return reject(errc::forbidden, std::string(rule) + ".read_only", "",
                  "Votre accès aux sollicitations reçues est en consultation : il ne permet pas "
                  "d'agir.");
  }
  if (caller.roles.auditor && !caller.roles.support_level1 && !caller.roles.support_level2) {
    return reject(errc::forbidden, std::string(rule) + ".read_only", "",
                  "Un auditeur consulte sans modifier.");
  }
  if (side == Side::emitter && !emitter) {
    return reject(errc::forbidden, std::string(rule) + ".emitter_only", "",
                  "Action réservée à l'émetteur du ticket.");
  }
  if (side == Side::recipient && !recipient) {
    return reject(errc::forbidden, std::string(rule) + ".recipient_only", "",
                  "Action réservée au destinataire du ticket.");
  }
  return {};
}

}  // namespace

int recommended_priority(std::string_view impact, std::string_view severity) noexcept {
  auto rank = [](std::string_view v) {
    return v == "major" ? 3 : v == "medium" ? 2 : v == "minor" ? 1 : 0;
  };
  const int a = rank(impact), b = rank(severity);
  if (a == 0 || b == 0) return 0;
  const int hi = std::max(a, b), lo = std::min(a, b);
  if (hi == 3 && lo == 3) return 1;
  if (hi == 3 && lo == 2) return 2;
  if ((hi == 2 && lo == 2) || (hi == 3 && lo == 1)) return 3;
  return 4;
}

bool is_business(const std::string& sub_category) noexcept {
  return sub_category.starts_with("M-") || sub_category.starts_with("M -");
}

bool is_recipient(const State& state, const Caller& caller, const Context& context) noexcept {
  if (is_business(state.sub_category)) return context.business_recipient;
  return caller.roles.support_level1 || caller.roles.support_level2;
}

const char* to_string(Status status) noexcept {
  switch (status) {
    case Status::none:
      return "none";
    case Status::draft:
      return "Brouillon";
    case Status::open:
      return "Ouvert";
    case Status::waiting_for_information:
      return "En attente d'informations";
    case Status::resolved:
      return "Résolu";
    case Status::closed:
      return "Fermé";
    case Status::deleted:
      return "Supprimé";
  }
  return "?";
}

std::string stream_id(const std::string& ticket_id) { return "ticket-" + ticket_id; }

std::string number_for(const std::string& ticket_id) {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  const auto digest = events::sha256(ticket_id);
  std::uint64_t bits = 0;
  for (int i = 0; i < 8; ++i) bits = (bits << 8) | digest[i];
  std::string out = "SOL-";
  for (int i = 0; i < 10; ++i) {
    out.push_back(kAlphabet[bits & 31]);
    bits >>= 5;
  }
  return out;
}

Decision<std::vector<events::Payload>> decide(const State& state, const Command& command,
                                              const Caller& caller, const Context& context) {
  using Events = Decision<std::vector<events::Payload>>;
  auto one = [](events::Payload p) -> Events { return std::vector<events::Payload>{std::move(p)}; };
  auto guard = [&](Side side, std::string_view rule, std::initializer_list<Status> allowed,
                   std::string_view what) -> Decision<void> {
    // A ticket never written, or a deleted draft, is unknown to every command that does not
    // create one, whoever asks, as to a read: before any rule of side or role could tell it
    // apart from one that exists.
    if ((state.status == Status::none || state.status == Status::deleted) &&
        std::ranges::find(allowed, state.status) == allowed.end()) {
      return reject(errc::not_found, std::string(rule) + ".not_found", "ticket_id",
                    "Ticket introuvable.");
    }
    if (auto ok = check_actor(state, caller, context, side, rule); !ok) return ok;
    return status_is(state, allowed, rule, what);
  };
  // Support handling: a support agent who is a recipient, on a submitted ticket not closed;
  // a level-2 ticket is handled by level 2. `business_too`: a business ticket's recipients
  // (who are its only recipients) may do it as well (take, release).
  auto support_guard = [&](std::string_view rule, bool business_too = false) -> Decision<void> {
    if (auto ok = guard(Side::recipient, rule,
                        {Status::open, Status::waiting_for_information, Status::resolved},
                        "Seul un ticket soumis et non clôturé se traite");
        !ok) {
      return ok;
    }
    if (business_too && is_business(state.sub_category)) return {};
    if (!caller.roles.support_level1 && !caller.roles.support_level2) {
      return reject(errc::forbidden, std::string(rule) + ".support_only", "",
                    "Action réservée au support.");
    }
    if (state.level == 2 && !caller.roles.support_level2) {
      return reject(errc::forbidden, std::string(rule) + ".level2", "level",
                    "Ce ticket a été envoyé au support de niveau 2.");
    }
    return {};
  };
  // A support ticket sent to level 2 is worked by level 2 only (a business ticket has no
  // level): support_guard's rule, for the actions its recipients share with a business
  // ticket's (requesting information, proposing a solution).
  auto level_guard = [&](std::string_view rule) -> Decision<void> {
    if (is_business(state.sub_category) || state.level != 2 || caller.roles.support_level2) {
      return {};
    }
    return reject(errc::forbidden, std::string(rule) + ".level2", "level",
                  "Ce ticket a été envoyé au support de niveau 2.");
  };
  // A support ticket an agent holds is worked by that agent (service-desk practice, seed 001:
  // the agent is shown): another requests information, proposes a solution or escalates once
  // it is released or reassigned to them, as take refuses. A business ticket's managers, who
  // cannot reassign, still may.
  auto held_guard = [&](std::string_view rule) -> Decision<void> {
    if (is_business(state.sub_category) || state.assignee.empty() ||
        state.assignee == caller.user_id) {
      return {};
    }
    return reject(errc::wrong_status, std::string(rule) + ".assigned", "assignee",
                  "Ce ticket est pris en charge par un autre agent.");
  };
  // Who may act and in which status (guard), then the command's text, when it carries one.
  struct Text {
    const std::string* value;
    std::string_view field;
    std::string_view label;
    bool required;
  };
  auto check = [&](Side side, std::string_view rule, std::initializer_list<Status> allowed,
                   std::string_view what, const Text& text) -> Decision<void> {
    if (auto ok = guard(side, rule, allowed, what); !ok) return ok;
    return check_text(*text.value, text.field, kTextMax, text.required, text.label, rule);
  };
  const auto& id = state.ticket_id;
  return std::visit(
      Overloaded{
          [&](const SaveDraft& c) -> Events {
            constexpr std::string_view rule = "ticket.save_draft";
            if (auto ok = guard(Side::emitter, rule, {Status::none, Status::draft},
                                "Seul un ticket au statut Brouillon peut être modifié");
                !ok) {
              return std::unexpected(ok.error());
            }
            if (auto ok = check_form(c.form, context, false, rule); !ok) {
              return std::unexpected(ok.error());
            }
            const Form f = routed(c.form, context);
            return one(events::TicketDraftSaved{id, caller.user_id, f.emitting_structure_id,
                                                f.category, f.sub_category, f.title, f.description,
                                                f.destination_structure_id, f.destination_service,
                                                f.object_type, f.object_number});
          },
          [&](const Submit& c) -> Events {
            constexpr std::string_view rule = "ticket.submit";
            if (auto ok = guard(Side::emitter, rule, {Status::none, Status::draft},
                                "Ce ticket a déjà été soumis");
                !ok) {
              return std::unexpected(ok.error());
            }
            if (!c.form && state.status == Status::none) {
              return reject(errc::invalid_field, "ticket.submit.form", "form",
                            "Le formulaire du ticket est obligatoire.");
            }
            const Form saved{state.emitting_structure_id, state.category,
                             state.sub_category,          state.title,
                             state.description,           state.destination_structure_id,
                             state.destination_service,   state.object_type,
                             state.object_number};
            Form form = c.form ? *c.form : saved;
            if (!c.form && !form.object_number.empty()) {
              // A draft's destination came from its object: the object's recipient decides
              // now, as it may have changed since.
              form.destination_structure_id.clear();
              form.destination_service.clear();
            }
            if (auto ok = check_form(form, context, true, rule); !ok) {
              return std::unexpected(ok.error());
            }
            form = routed(std::move(form), context);
            if (c.number.empty()) {
              return reject(errc::invalid_field, "ticket.submit.number", "number",
                            "Numéro de ticket manquant.");
            }
            return one(events::TicketSubmitted{
                id, c.number, caller.user_id, form.emitting_structure_id, form.category,
                form.sub_category, form.title, form.description, form.destination_structure_id,
                form.destination_service, "", form.object_type, form.object_number});
          },
          [&](const SubmitSignedOut& c) -> Events {
            constexpr std::string_view rule = "ticket.submit_signed_out";
            if (state.status != Status::none) {
              return reject(errc::wrong_status, "ticket.submit_signed_out.status", "status",
                            "Ce ticket a déjà été soumis.");
            }
            if (auto ok = check_email(c.email, rule); !ok) return std::unexpected(ok.error());
            if (auto ok = check_form(c.form, context, true, rule, /*signed_out=*/true); !ok) {
              return std::unexpected(ok.error());
            }
            if (c.number.empty()) {
              return reject(errc::invalid_field, "ticket.submit_signed_out.number", "number",
                            "Numéro de ticket manquant.");
            }
            const Form f = routed(c.form, context);
            return one(events::TicketSubmitted{id, c.number, "", "", f.category, f.sub_category,
                                               f.title, f.description, f.destination_structure_id,
                                               f.destination_service, c.email, f.object_type,
                                               f.object_number});
          },
          [&](const DeleteDraft&) -> Events {
            if (auto ok = guard(Side::emitter, "ticket.delete_draft", {Status::draft},
                                "Seul un brouillon peut être supprimé");
                !ok) {
              return std::unexpected(ok.error());
            }
            return one(events::TicketDraftDeleted{id});
          },
          [&](const RequestInformation& c) -> Events {
            constexpr std::string_view rule = "ticket.request_information";
            if (auto ok = check(Side::recipient, rule, {Status::open},
                                "Une demande d'informations se fait sur un ticket Ouvert",
                                Text{&c.text, "text", "Demande d'informations", true});
                !ok) {
              return std::unexpected(ok.error());
            }
            if (auto ok = level_guard(rule); !ok) return std::unexpected(ok.error());
            if (auto ok = held_guard(rule); !ok) return std::unexpected(ok.error());
            // The agent who asks handles the ticket, and gets it back with the answer.
            std::vector<events::Payload> out;
            if (state.assignee != caller.user_id) {
              out.push_back(events::TicketAssigned{id, caller.user_id});
            }
            out.push_back(events::InformationRequested{id, c.text});
            return out;
          },
          [&](const ProvideInformation& c) -> Events {
            constexpr std::string_view rule = "ticket.provide_information";
            if (auto ok = check(Side::emitter, rule, {Status::waiting_for_information},
                                "Aucune information n'est demandée sur ce ticket",
                                Text{&c.text, "text", "Réponse", true});
                !ok) {
              return std::unexpected(ok.error());
            }
            std::vector<events::Payload> out{events::InformationProvided{id, c.text}};
            if (!state.asked_by.empty() && state.assignee != state.asked_by) {
              out.push_back(events::TicketAssigned{id, state.asked_by});
            }
            return out;
          },
          [&](const ProposeSolution& c) -> Events {
            constexpr std::string_view rule = "ticket.propose_solution";
            if (auto ok = check(Side::recipient, rule, {Status::open},
                                "Une solution se propose sur un ticket Ouvert",
                                Text{&c.text, "text", "Solution", true});
                !ok) {
              return std::unexpected(ok.error());
            }
            if (auto ok = level_guard(rule); !ok) return std::unexpected(ok.error());
            if (auto ok = held_guard(rule); !ok) return std::unexpected(ok.error());
            return one(events::SolutionProposed{id, c.text});
          },
          [&](const AcceptSolution&) -> Events {
            if (auto ok = guard(Side::emitter, "ticket.accept_solution", {Status::resolved},
                                "Aucune solution n'est proposée sur ce ticket");
                !ok) {
              return std::unexpected(ok.error());
            }
            return one(events::SolutionAccepted{id});
          },
          [&](const RefuseSolution& c) -> Events {
            constexpr std::string_view rule = "ticket.refuse_solution";
            if (auto ok = check(Side::emitter, rule, {Status::resolved},
                                "Aucune solution n'est proposée sur ce ticket",
                                Text{&c.reason, "reason", "Motif du refus", true});
                !ok) {
              return std::unexpected(ok.error());
            }
            return one(events::SolutionRefused{id, c.reason});
          },
          [&](const Close& c) -> Events {
            constexpr std::string_view rule = "ticket.close";
            if (auto ok =
                    check(Side::emitter, rule, {Status::open, Status::waiting_for_information},
                          "Seul un ticket Ouvert ou En attente d'informations se clôture",
                          Text{&c.reason, "reason", "Motif", false});
                !ok) {
              return std::unexpected(ok.error());
            }
            return one(events::TicketClosed{id, c.reason});
          },
          [&](const AddComment& c) -> Events {
            constexpr std::string_view rule = "ticket.comment";
            if (auto ok = check(Side::either, rule,
                                {Status::open, Status::waiting_for_information, Status::resolved},
                                "Un ticket se commente après sa soumission et jusqu'à sa clôture",
                                Text{&c.text, "text", "Commentaire", true});
                !ok) {
              return std::unexpected(ok.error());
            }
            return one(events::CommentAdded{id, c.text});
          },
          [&](const AddAttachment& c) -> Events {
            constexpr std::string_view rule = "ticket.attachment";
            // Either side until "Fermé" (DOMAIN.md); on a draft only its emitter sees it, so
            // only the emitter passes check_actor there.
            if (auto ok = guard(Side::either, rule,
                                {Status::draft, Status::open, Status::waiting_for_information,
                                 Status::resolved},
                                "Une pièce jointe s'ajoute jusqu'à la clôture du ticket");
                !ok) {
              return std::unexpected(ok.error());
            }
            if (state.attachments >= kAttachmentsMax) {
              return reject(errc::wrong_status, "ticket.attachment.too_many", "attachments",
                            "Un ticket porte au plus " + std::to_string(kAttachmentsMax) +
                                " pièces jointes.");
            }
            for (auto verdict :
                 {check_text(c.attachment_id, "attachment_id", kCodeMax, true,
                             "Identifiant de la pièce jointe", rule),
                  check_file_name(c.name, rule), check_media_type(c.media_type, rule)}) {
              if (!verdict) return std::unexpected(verdict.error());
            }
            if (c.size == 0) {
              return reject(errc::invalid_field, "ticket.attachment.empty", "size",
                            "Le fichier est vide.");
            }
            if (!is_sha256_hex(c.sha256)) {
              return reject(errc::invalid_field, "ticket.attachment.sha256", "sha256",
                            "Empreinte SHA-256 invalide : 64 chiffres hexadécimaux attendus.");
            }
            return one(
                events::FileAttached{id, c.attachment_id, c.name, c.media_type, c.size, c.sha256});
          },
          [&](const Take&) -> Events {
            if (auto ok = support_guard("ticket.take", true); !ok)
              return std::unexpected(ok.error());
            if (state.assignee == caller.user_id) {
              return reject(errc::wrong_status, "ticket.take.already_yours", "assignee",
                            "Vous traitez déjà ce ticket.");
            }
            // A business ticket held by someone who has left its destination is taken over.
            if (!state.assignee.empty() &&
                !(is_business(state.sub_category) && context.assignee_left_destination)) {
              return reject(errc::wrong_status, "ticket.take.assigned", "assignee",
                            "Ce ticket est déjà en cours de traitement par un autre agent.");
            }
            return one(events::TicketAssigned{id, caller.user_id});
          },
          [&](const Release&) -> Events {
            if (auto ok = support_guard("ticket.release", true); !ok)
              return std::unexpected(ok.error());
            if (state.assignee != caller.user_id) {
              return reject(errc::forbidden, "ticket.release.not_yours", "assignee",
                            "Seul l'agent qui traite le ticket peut le relâcher.");
            }
            return one(events::TicketAssigned{id, ""});
          },
          [&](const Reassign& c) -> Events {
            if (auto ok = support_guard("ticket.reassign"); !ok) return std::unexpected(ok.error());
            if (auto ok = check_text(c.agent_user_id, "agent_user_id", kCodeMax, true, "Agent",
                                     "ticket.reassign");
                !ok) {
              return std::unexpected(ok.error());
            }
            // The emitter is no agent of their own ticket (a user id the support typed wrong).
            if (!state.emitter_user_id.empty() && c.agent_user_id == state.emitter_user_id) {
              return reject(errc::invalid_field, "ticket.reassign.emitter", "agent_user_id",
                            "Le ticket ne peut être affecté à son émetteur.");
            }
            if (c.agent_user_id == state.assignee) {
              return reject(errc::wrong_status, "ticket.reassign.unchanged", "agent_user_id",
                            "Le ticket est déjà affecté à cet agent.");
            }
            return one(events::TicketAssigned{id, c.agent_user_id});
          },
          [&](const Escalate&) -> Events {
            if (auto ok = support_guard("ticket.escalate"); !ok) return std::unexpected(ok.error());
            if (!caller.roles.support_level1 || state.level != 1) {
              return reject(errc::forbidden, "ticket.escalate.level1_only", "level",
                            "Seul le support de niveau 1 envoie un ticket au niveau 2.");
            }
            if (auto ok = held_guard("ticket.escalate"); !ok) return std::unexpected(ok.error());
            return one(events::TicketEscalated{id});
          },
          [&](const SetPriority& c) -> Events {
            constexpr std::string_view rule = "ticket.priority";
            if (auto ok = support_guard(rule); !ok) return std::unexpected(ok.error());
            const int recommended = recommended_priority(c.impact, c.severity);
            if (recommended == 0) {
              return reject(errc::invalid_field, "ticket.priority.scale",
                            recommended_priority(c.impact, "major") == 0 ? "impact" : "severity",
                            "Impact et gravité valent major, medium ou minor.");
            }
            const int priority = c.priority.value_or(recommended);
            if (priority < 1 || priority > 4) {
              return reject(errc::invalid_field, "ticket.priority.range", "priority",
                            "La priorité va de 1 (très haute) à 4 (basse).");
            }
            if (priority != recommended && events::skip_blank(c.reason).empty()) {
              return reject(errc::invalid_field, "ticket.priority.reason", "reason",
                            "Une priorité différente de la recommandation demande un motif.");
            }
            return one(events::PrioritySet{id, c.impact, c.severity,
                                           static_cast<std::uint8_t>(recommended),
                                           static_cast<std::uint8_t>(priority), c.reason});
          },
      },
      command);
}

Decision<Status> transition(Status from, const events::Payload& payload) {
  // The status table of DOMAIN.md as data: the statuses where each event may happen (a bit
  // set) and the status it leads to (nullopt: the status stays).
  struct Move {
    unsigned from;
    std::optional<Status> to;
  };
  constexpr auto bit = [](auto... s) { return ((1u << static_cast<unsigned>(s)) | ...); };
  constexpr unsigned kNew = bit(Status::none, Status::draft);
  constexpr unsigned kHandled =
      bit(Status::open, Status::waiting_for_information, Status::resolved);
  const auto move = std::visit(
      Overloaded{
          [&](const events::TicketDraftSaved&) -> std::optional<Move> {
            return Move{kNew, Status::draft};
          },
          [&](const events::TicketSubmitted&) -> std::optional<Move> {
            return Move{kNew, Status::open};
          },
          [&](const events::TicketDraftDeleted&) -> std::optional<Move> {
            return Move{bit(Status::draft), Status::deleted};
          },
          [&](const events::InformationRequested&) -> std::optional<Move> {
            return Move{bit(Status::open), Status::waiting_for_information};
          },
          [&](const events::InformationProvided&) -> std::optional<Move> {
            return Move{bit(Status::waiting_for_information), Status::open};
          },
          [&](const events::SolutionProposed&) -> std::optional<Move> {
            return Move{bit(Status::open), Status::resolved};
          },
          [&](const events::SolutionAccepted&) -> std::optional<Move> {
            return Move{bit(Status::resolved), Status::closed};
          },
          [&](const events::SolutionRefused&) -> std::optional<Move> {
            return Move{bit(Status::resolved), Status::open};
          },
          [&](const events::TicketClosed&) -> std::optional<Move> {
            return Move{bit(Status::open, Status::waiting_for_information), Status::closed};
          },
          [&](const events::CommentAdded&) -> std::optional<Move> {
            return Move{kHandled, std::nullopt};
          },
          [&](const events::TicketAssigned&) -> std::optional<Move> {
            return Move{kHandled, std::nullopt};
          },
          [&](const events::FileAttached&) -> std::optional<Move> {
            return Move{kHandled | bit(Status::draft), std::nullopt};
          },
          [&](const events::TicketEscalated&) -> std::optional<Move> {
            return Move{kHandled, std::nullopt};
          },
          [&](const events::PrioritySet&) -> std::optional<Move> {
            return Move{kHandled, std::nullopt};
          },
          // Events of other aggregates (notifications, structures, ...).
          [](const auto&) -> std::optional<Move> { return std::nullopt; },
      },
      payload);
  if (!move) {
    return reject(errc::invalid_field, "ticket.invariant.foreign_event", "type",
                  std::string("Un événement ") + events::type_name(payload) +
                      " n'appartient pas au flux d'un ticket.");
  }
  if ((move->from & bit(from)) == 0) {
    return reject(errc::wrong_status, "ticket.invariant.transition", "status",
                  std::string("Le tableau des statuts n'autorise pas ") +
                      events::type_name(payload) + " au statut " + to_string(from) + ".");
  }
  return move->to.value_or(from);
}

State evolve(State state, const events::Payload& payload) {
  ++state.version;
  std::visit(Overloaded{
                 [&](const events::TicketDraftSaved& e) {
                   state.status = Status::draft;
                   state.ticket_id = e.ticket_id;
                   state.emitter_user_id = e.emitter_user_id;
                   state.emitting_structure_id = e.emitting_structure_id;
                   state.category = e.category;
                   state.sub_category = e.sub_category;
                   state.title = e.title;
                   state.description = e.description;
                   state.destination_structure_id = e.destination_structure_id;
                   state.destination_service = e.destination_service;
                   state.object_type = e.object_type;
                   state.object_number = e.object_number;
                 },
                 [&](const events::TicketSubmitted& e) {
                   state.status = Status::open;
                   state.ticket_id = e.ticket_id;
                   state.number = e.number;
                   state.emitter_user_id = e.emitter_user_id;
                   state.emitting_structure_id = e.emitting_structure_id;
                   state.category = e.category;
                   state.sub_category = e.sub_category;
                   state.title = e.title;
                   state.description = e.description;
                   state.destination_structure_id = e.destination_structure_id;
                   state.destination_service = e.destination_service;
                   state.emitter_email = e.emitter_email;
                   state.object_type = e.object_type;
                   state.object_number = e.object_number;
                 },
                 [&](const events::TicketDraftDeleted&) { state.status = Status::deleted; },
                 [&](const events::InformationRequested&) {
                   state.status = Status::waiting_for_information;
                   state.asked_by = state.assignee;
                 },
                 [&](const events::InformationProvided&) {
                   state.status = Status::open;
                   state.asked_by.clear();
                 },
                 [&](const events::TicketAssigned& e) { state.assignee = e.agent_user_id; },
                 [&](const events::TicketEscalated&) {
                   state.level = 2;
                   state.assignee.clear();
                   // Level 1 asked: the answer goes to level 2's queue, not back to the asker.
                   state.asked_by.clear();
                 },
                 [&](const events::PrioritySet& e) { state.priority = e.priority; },
                 [&](const events::NotificationSent&) {},  // not a ticket event
                 [&](const events::SolutionProposed&) { state.status = Status::resolved; },
                 [&](const events::SolutionAccepted&) { state.status = Status::closed; },
                 [&](const events::SolutionRefused&) { state.status = Status::open; },
                 [&](const events::TicketClosed&) { state.status = Status::closed; },
                 [&](const events::CommentAdded&) {},
                 [&](const events::FileAttached&) { ++state.attachments; },
                 // Events of other aggregates (structures, accounts) never reach a ticket; a
                 // ticket event without its own case above still fails to compile.
                 [](const auto& e) {
                   static_assert(
                       !requires { e.ticket_id; }, "every ticket event needs its own case");
                 },
             },
             payload);
  return state;
}

}  // namespace chorus::domain::ticket
