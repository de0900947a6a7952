#include "domain/ticket.h"

namespace chorus::domain::ticket {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

Decision<void> check_text(const std::string& value, std::string_view field, std::size_t max,
                          bool required, std::string_view label, std::string_view rule) {
  if (required && value.empty()) {
    return reject(errc::invalid_field, std::string(rule) + ".required", std::string(field),
                  "Le champ « " + std::string(label) + " » est obligatoire.");
  }
  if (value.size() > max) {
    return reject(
        errc::invalid_field, std::string(rule) + ".too_long", std::string(field),
        "Le champ « " + std::string(label) + " » dépasse " + std::to_string(max) + " caractères.");
  }
  return {};
}

// `complete`: a submission needs every field; a draft may lack the title and description.
Decision<void> check_form(const Form& f, const Context& context, bool complete,
                          std::string_view rule) {
  for (auto check :
       {check_text(f.emitting_structure_id, "emitting_structure_id", kCodeMax, true,
                   "Identifiant de l'organisation", rule),
        check_text(f.category, "category", kCodeMax, true, "Catégorie", rule),
        check_text(f.sub_category, "sub_category", kCodeMax, true, "Sous-catégorie", rule),
        check_text(f.title, "title", kTitleMax, complete, "Titre/Résumé", rule),
        check_text(f.description, "description", kDescriptionMax, complete, "Description longue",
                   rule)}) {
    if (!check) return check;
  }
  if (!context.attached_to_emitting_structure) {
    return reject(errc::forbidden, std::string(rule) + ".emitting_structure",
                  "emitting_structure_id",
                  "Vous n'êtes pas rattaché à la structure émettrice choisie.");
  }
  return {};
}

Decision<void> check_emitter(const State& state, const Caller& caller, std::string_view rule) {
  if (state.status != Status::none && state.emitter_user_id != caller.user_id) {
    // Someone else's draft: its existence must not leak.
    return reject(errc::not_found, std::string(rule) + ".not_found", "ticket_id",
                  "Ticket introuvable.");
  }
  if (caller.roles.auditor && !caller.roles.support_level1 && !caller.roles.support_level2) {
    return reject(errc::forbidden, std::string(rule) + ".read_only", "",
                  "Un auditeur consulte sans modifier.");
  }
  return {};
}

}  // namespace

const char* to_string(Status status) noexcept {
  switch (status) {
    case Status::none:
      return "none";
    case Status::draft:
      return "Brouillon";
    case Status::open:
      return "Ouvert";
    case Status::closed:
      return "Fermé";
    case Status::deleted:
      return "Supprimé";
  }
  return "?";
}

std::string stream_id(const std::string& ticket_id) { return "ticket-" + ticket_id; }

Decision<std::vector<events::Payload>> decide(const State& state, const Command& command,
                                              const Caller& caller, const Context& context) {
  return std::visit(
      Overloaded{
          [&](const SaveDraft& c) -> Decision<std::vector<events::Payload>> {
            constexpr std::string_view rule = "ticket.save_draft";
            if (auto ok = check_emitter(state, caller, rule); !ok)
              return std::unexpected(ok.error());
            if (state.status != Status::none && state.status != Status::draft) {
              return reject(
                  errc::wrong_status, "ticket.save_draft.status", "status",
                  "Seul un ticket au statut Brouillon peut être modifié (statut actuel : " +
                      std::string(to_string(state.status)) + ").");
            }
            if (auto ok = check_form(c.form, context, false, rule); !ok) {
              return std::unexpected(ok.error());
            }
            return std::vector<events::Payload>{events::TicketDraftSaved{
                state.ticket_id, caller.user_id, c.form.emitting_structure_id, c.form.category,
                c.form.sub_category, c.form.title, c.form.description}};
          },
          [&](const Submit& c) -> Decision<std::vector<events::Payload>> {
            constexpr std::string_view rule = "ticket.submit";
            if (auto ok = check_emitter(state, caller, rule); !ok)
              return std::unexpected(ok.error());
            if (state.status != Status::none && state.status != Status::draft) {
              return reject(errc::wrong_status, "ticket.submit.status", "status",
                            "Ce ticket a déjà été soumis (statut actuel : " +
                                std::string(to_string(state.status)) + ").");
            }
            if (!c.form && state.status == Status::none) {
              return reject(errc::invalid_field, "ticket.submit.form", "form",
                            "Le formulaire du ticket est obligatoire.");
            }
            const Form form = c.form ? *c.form
                                     : Form{state.emitting_structure_id, state.category,
                                            state.sub_category, state.title, state.description};
            if (auto ok = check_form(form, context, true, rule); !ok) {
              return std::unexpected(ok.error());
            }
            if (c.number.empty()) {
              return reject(errc::invalid_field, "ticket.submit.number", "number",
                            "Numéro de ticket manquant.");
            }
            return std::vector<events::Payload>{events::TicketSubmitted{
                state.ticket_id, c.number, caller.user_id, form.emitting_structure_id,
                form.category, form.sub_category, form.title, form.description}};
          },
      },
      command);
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
                 },
             },
             payload);
  return state;
}

}  // namespace chorus::domain::ticket
