/* The requirements board (templates/apps_catalog/_requirement_board.html).
   Moves are plain forms: htmx (hx-post on each card's form) swaps the board
   answered by the server in place, without a reload or a jump in scroll. This
   file adds drag and drop on top (a drop clicks the card's own "Move to" button,
   so it is the same request, with or without htmx), keeps focus on the moved card
   and handles the answers htmx would not swap. Keyboard users use the buttons. */
(function () {
  "use strict";

  var BOARD = "requirement-board";
  var dragged = null;

  function board() {
    return document.getElementById(BOARD);
  }

  // Only cards the signed-in owner may move become draggable; the page marks them.
  function arm() {
    var root = board();
    if (!root) return;
    root.querySelectorAll(".board-card[data-movable]").forEach(function (card) {
      card.draggable = true;
    });
  }

  function columnOf(node) {
    return node instanceof Element ? node.closest(".board-column[data-status]") : null;
  }

  function clearTargets() {
    var root = board();
    if (!root) return;
    root.querySelectorAll(".board-column.drop-target").forEach(function (column) {
      column.classList.remove("drop-target");
    });
  }

  function canDrop(column) {
    return dragged && column && column.dataset.status !== dragged.dataset.status;
  }

  document.addEventListener("dragstart", function (event) {
    var card = event.target instanceof Element && event.target.closest(".board-card[data-movable]");
    if (!card) return;
    dragged = card;
    card.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.id);
  });

  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
    clearTargets();
  });

  document.addEventListener("dragover", function (event) {
    var column = columnOf(event.target);
    if (!canDrop(column)) return;
    event.preventDefault();  // allows the drop
    event.dataTransfer.dropEffect = "move";
    if (!column.classList.contains("drop-target")) {
      clearTargets();
      column.classList.add("drop-target");
    }
  });

  document.addEventListener("dragleave", function (event) {
    var column = columnOf(event.target);
    if (column && !column.contains(event.relatedTarget)) {
      column.classList.remove("drop-target");
    }
  });

  document.addEventListener("drop", function (event) {
    var column = columnOf(event.target);
    if (!canDrop(column)) return;
    event.preventDefault();
    var card = dragged;
    clearTargets();
    var button = card.querySelector(
      'button[name="status"][value="' + CSS.escape(column.dataset.status) + '"]'
    );
    // A click (not form.requestSubmit) so htmx sends this button's status too.
    if (button) button.click();
  });

  // An answer that is not the board (the sign-in page after the session ended,
  // say) is shown as a page of its own rather than swapped into the board.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target && event.detail.target.id === BOARD &&
        event.detail.serverResponse.indexOf('id="' + BOARD + '"') === -1) {
      event.detail.shouldSwap = false;
      window.location.assign(event.detail.xhr.responseURL || window.location.href);
    }
  });

  // htmx swaps nothing on an error status or a network failure: say so in place.
  function failed(event) {
    var root = board();
    if (!root || !root.contains(event.detail.elt)) return;
    var note = root.querySelector(".board-failure");
    if (!note) {
      note = document.createElement("p");
      note.className = "board-failure";
      note.setAttribute("role", "alert");
      root.insertBefore(note, root.firstChild);
    }
    note.textContent = "The card could not be moved (" +
      (event.detail.xhr && event.detail.xhr.status ? "error " + event.detail.xhr.status : "no connection") +
      "). Reload the page and try again.";
  }
  document.addEventListener("htmx:responseError", failed);
  document.addEventListener("htmx:sendError", failed);

  // The button that was used left with the card's old column; keep the keyboard
  // on the card itself, without scrolling to it.
  document.addEventListener("htmx:afterSettle", function () {
    arm();
    var root = board();
    if (!root) return;
    var moved = root.querySelector(".board-card[data-moved]");
    var active = document.activeElement;
    if (moved && (!active || active === document.body || !root.contains(active))) {
      moved.focus({ preventScroll: true });
    }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", arm);
  } else {
    arm();
  }
})();
